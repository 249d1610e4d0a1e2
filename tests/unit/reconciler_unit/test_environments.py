"""Environments that share a base stack file (``x-driftless-base``), merged by the real docker
CLI as ``docker stack deploy -c base.yml -c stack.yml`` merges them (``docker stack config``
needs no engine), through the whole pass on the fakes of ``reconciler_support.world``."""

from __future__ import annotations

from pathlib import Path

import pytest
from reconciler_support.world import STACK_FILE, STACK_YML, World

from reconciler.adapters.compose_merge import cli_merge
from reconciler.desired import RenderOptions, render
from reconciler.desired_files import watched_paths
from reconciler.errors import Reason, ValidationError
from reconciler.models import PassResult

BASE_FILE = "desired-state/base/stack.yml"
OVERRIDE = """x-driftless-base: ../base/stack.yml
version: "3.8"
services:
  api:
    environment: {LOG_LEVEL: debug}
    deploy:
      replicas: 1
      labels: {env: staging}
"""


@pytest.fixture
async def world(tmp_path: Path) -> World:
    world = World(tmp_path)
    base = STACK_YML.replace("    networks: [back]\n    deploy:\n      replicas: 3", (
        "    networks: [back]\n    environment: {LOG_LEVEL: info, REGION: eu}\n"
        "    deploy:\n      replicas: 3"
    ), 1)  # fmt: skip
    world.remote.write({BASE_FILE: base, STACK_FILE: OVERRIDE}, "Share a base stack file")
    first = await world.sync()
    assert first.result == PassResult.SUCCESS, first.message
    return world


def test_the_override_is_merged_on_the_base_as_docker_merges_it(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "stack.yml").write_text(
        'version: "3.8"\nservices:\n  api:\n    image: r/api:1\n'
        "    environment: {A: '1', B: '2'}\n    deploy: {replicas: 3, labels: {a: '1'}}\n"
    )
    (tmp_path / "staging").mkdir()
    (tmp_path / "base" / "api.env").write_text("C=4\nB=5\n")
    (tmp_path / "staging" / "stack.yml").write_text(
        'x-driftless-base: ../base/stack.yml\nversion: "3.8"\nservices:\n  api:\n'
        "    env_file: ./api.env\n"  # relative to the base's folder, as docker reads it
        "    environment: {B: '3'}\n    deploy: {replicas: 1, labels: {b: '2'}}\n"
    )
    (tmp_path / "staging" / "images.yaml").write_text("api: r/api:2\n")
    options = RenderOptions("shop", "staging", repo_root=tmp_path, merge=cli_merge())
    desired = render(tmp_path / "staging", options)
    api = desired.service("api")
    assert api is not None
    assert api.image == "r/api:2"
    assert dict(api.fields.env) == {"A": "1", "B": "3", "C": "4"}
    assert api.fields.replicas == 1
    assert {"a": "1", "b": "2"}.items() <= dict(api.fields.labels).items()
    assert "x-driftless-base" not in desired.document


def test_variables_fill_the_base_before_docker_checks_its_numbers(tmp_path: Path) -> None:
    # a published port or a replica count from a variable is a string until interpolated: the
    # CLI's schema check needs the number, so the merge is given the renderer's variables
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "stack.yml").write_text(
        'version: "3.8"\nservices:\n  web:\n    image: r/web:1\n'
        '    ports: [{target: 80, published: "${HTTP_PORT:-80}", mode: host}]\n'
        "    healthcheck: {test: [CMD-SHELL, 'test -n \"$$HOSTNAME\"']}\n"
        "    deploy:\n      replicas: ${WEB_REPLICAS:-2}\n"
    )
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "stack.yml").write_text(
        'x-driftless-base: ../base/stack.yml\nversion: "3.8"\nservices:\n  web:\n'
        "    environment: {REGION: '${REGION}'}\n"
    )
    options = RenderOptions(
        "shop",
        "staging",
        variables={"HTTP_PORT": "8080", "REGION": "eu"},
        repo_root=tmp_path,
        merge=cli_merge(),
    )
    web = render(tmp_path / "staging", options).service("web")
    assert web is not None
    assert web.fields.replicas == 2
    assert dict(web.fields.env) == {"REGION": "eu"}
    assert [(p.published, p.target) for p in web.fields.ports] == [(8080, 80)]
    assert web.fields.healthcheck is not None
    assert 'test -n "$HOSTNAME"' in str(web.fields.healthcheck)  # $$ is still a literal $
    unset = RenderOptions("shop", "staging", repo_root=tmp_path, merge=cli_merge())
    with pytest.raises(ValidationError, match="variable REGION is not set"):
        render(tmp_path / "staging", unset)


def test_a_base_outside_the_repository_or_missing_is_refused(tmp_path: Path) -> None:
    (tmp_path / "repo" / "staging").mkdir(parents=True)
    stack = tmp_path / "repo" / "staging" / "stack.yml"
    options = RenderOptions("shop", "staging", repo_root=tmp_path / "repo", merge=cli_merge())
    stack.write_text('x-driftless-base: ../../outside.yml\nversion: "3.8"\n')
    with pytest.raises(ValidationError, match="points outside the repository"):
        render(stack.parent, options)
    stack.write_text('x-driftless-base: ../base/stack.yml\nversion: "3.8"\n')
    with pytest.raises(ValidationError, match=r"file '../base/stack.yml' does not exist"):
        render(stack.parent, options)
    (tmp_path / "repo" / "base").mkdir()
    (tmp_path / "repo" / "base" / "stack.yml").write_text("services: [not, a, mapping]\n")
    with pytest.raises(ValidationError, match="cannot merge it with its base: docker stack config"):
        render(stack.parent, options)
    no_cli = RenderOptions("shop", "staging", repo_root=tmp_path / "repo", merge=None)
    with pytest.raises(ValidationError, match="merging it with its base needs the docker CLI"):
        render(stack.parent, no_cli)


def test_the_paths_a_folder_depends_on() -> None:
    text = "x-driftless-base: ../base/stack.yml\n"
    assert watched_paths("desired-state/staging", text) == [
        "desired-state/staging",
        "desired-state/base",
    ]
    assert watched_paths("desired-state/staging", "services: {}\n") == ["desired-state/staging"]
    assert watched_paths("desired-state/staging", "x-driftless-base: ../../../etc/x\n") == [
        "desired-state/staging"
    ]


async def test_the_environment_runs_the_merged_stack(world: World) -> None:
    assert world.live("api") == "1"
    definition = world.swarm.stacks["shop"]["api"].definition
    assert definition["environment"] == {"LOG_LEVEL": "debug", "REGION": "eu"}
    assert definition["deploy"]["replicas"] == 1
    assert world.tasks("api") == ["1"]


async def test_a_bad_change_to_the_base_alone_is_reverted_for_the_environment(
    world: World,
) -> None:
    """The commit that breaks the base is not under the environment's folder: it is still the
    revision's change, rolled back and reverted (and only the base is touched by the revert)."""
    base = world.remote.tree()[BASE_FILE]
    broken = base.replace(
        'driftless.health.expect-version: "{tag}"', 'driftless.health.expect-version: "9"', 1
    )
    assert broken != base
    bad = world.remote.write({BASE_FILE: broken}, "Expect version 9 of web")
    out = await world.sync()
    assert (out.result, out.reason) == (PassResult.ROLLED_BACK, Reason.HEALTH_CHECK_FAILED)
    [revert] = world.reverts()
    assert f"Driftless-Revert-Of: {bad}" in world.remote.message()
    assert world.remote.message().startswith('Revert "Expect version 9 of web"')
    assert world.remote.tree()[BASE_FILE] == base
    assert world.remote.head() == revert
    assert (await world.sync()).reason == Reason.IN_SYNC
