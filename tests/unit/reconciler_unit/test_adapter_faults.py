"""The adapters read every failure through ``reconciler.faults`` and name the component that
failed: the Docker SDK's answers (a stand-in client), ``docker stack deploy``'s stderr (a
stand-in CLI) and git's own words for a remote that does not answer (a real git, a closed port on
loopback). No engine, registry or network is needed."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests
from reconciler_support.fakes import FakeClock

from reconciler.adapters.git import GitRepo
from reconciler.adapters.swarm import SwarmAdapter
from reconciler.config import GitConfig
from reconciler.errors import (
    ApplyError,
    DockerError,
    GitError,
    PreflightError,
    Reason,
    RollbackError,
)
from reconciler.masking import Masker

IMAGE = "registry.test:5000/shop/web:2"
SECRET = "s3cr3t-token"


def _api_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(f"{status} Server Error", response, explanation)


class _Api:
    """Every Engine API call fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def call(*args: object, **kwargs: object) -> Any:
            raise self.error

        return call


class _Client:
    def __init__(self, error: Exception) -> None:
        self.api = _Api(error)

    def close(self) -> None:
        pass


def _swarm(error: Exception, cli: str = "docker") -> SwarmAdapter:
    swarm = SwarmAdapter(clock=FakeClock(), masker=Masker([SECRET]), cli=cli)
    swarm._client = _Client(error)  # type: ignore[assignment]
    return swarm


REGISTRY_DOWN = (
    'Get "http://registry.test:5000/v2/": dial tcp 10.0.0.9:5000: connect: connection refused'
)


@pytest.mark.parametrize(
    ("error", "reason", "words"),
    [
        (
            _api_error(500, REGISTRY_DOWN),
            Reason.REGISTRY_UNAVAILABLE,
            "registry registry.test:5000 unreachable",
        ),
        (
            _api_error(500, "received unexpected HTTP status: 503 Service Unavailable"),
            Reason.REGISTRY_UNAVAILABLE,
            "registry registry.test:5000 unreachable",
        ),
        (
            _api_error(500, "toomanyrequests: You have reached your pull rate limit."),
            Reason.REGISTRY_UNAVAILABLE,
            "registry registry.test:5000 unreachable",
        ),
        (
            requests.exceptions.ConnectionError("('Connection aborted.', FileNotFoundError(2))"),
            Reason.DOCKER_UNAVAILABLE,
            "Docker engine unreachable",
        ),
    ],
)
async def test_a_registry_in_trouble_at_pre_flight_is_named(
    error: Exception, reason: Reason, words: str
) -> None:
    with pytest.raises(DockerError) as caught:
        await _swarm(error).image_digest(IMAGE)
    assert caught.value.reason == reason
    assert caught.value.message.startswith(f"checking image {IMAGE}: {words}: ")
    assert caught.value.detail


async def test_the_raw_error_is_kept_masked() -> None:
    text = f'Get "https://bot:{SECRET}@registry.test:5000/v2/": net/http: TLS handshake timeout'
    with pytest.raises(DockerError) as caught:
        await _swarm(_api_error(500, text)).image_digest(IMAGE)
    assert SECRET not in caught.value.message + caught.value.detail
    assert "TLS handshake timeout" in caught.value.detail


@pytest.mark.parametrize(
    "error",
    [
        docker.errors.NotFound("404 Client Error", explanation="no such image"),
        _api_error(500, "manifest unknown: manifest unknown"),
    ],
)
async def test_an_image_the_registry_does_not_have_is_missing(error: Exception) -> None:
    assert await _swarm(error).image_digest(IMAGE) is None


@pytest.mark.parametrize(
    "error",
    [
        _api_error(401, "unauthorized: authentication required"),
        _api_error(403, "denied: requested access to the resource is denied"),
        _api_error(500, "Head https://registry.test:5000/v2/: no basic auth credentials"),
    ],
)
async def test_a_registry_that_refuses_access_refuses_the_revision(error: Exception) -> None:
    with pytest.raises(PreflightError, match="the registry refused access"):
        await _swarm(error).image_digest(IMAGE)


async def test_an_engine_that_is_not_a_manager_is_the_engines_not_the_revisions() -> None:
    error = _api_error(503, "This node is not a swarm manager.")
    with pytest.raises(DockerError) as caught:
        await _swarm(error).live_state("shop")
    assert caught.value.reason == Reason.DOCKER_UNAVAILABLE
    assert "Docker engine refused: This node is not a swarm manager." in caught.value.message


async def test_a_rollback_the_engine_refuses_for_its_spec_stalls_one_it_drops_is_retried() -> None:
    previous: dict[str, Any] = {"web": {"TaskTemplate": {}, "Name": "shop_web"}}
    spec = _api_error(400, "rpc error: code = InvalidArgument desc = ContainerSpec: bad mount")
    with pytest.raises(RollbackError, match="rollback could not be started"):
        await _swarm(spec).restore("shop", previous, time_limit=10)
    lost = _api_error(500, "rpc error: code = Unavailable desc = connection error")
    with pytest.raises(DockerError) as caught:
        await _swarm(lost).restore("shop", previous, time_limit=10)
    assert caught.value.reason == Reason.DOCKER_UNAVAILABLE


# ------------------------------------------------------------------ docker stack deploy

_CLI = """#!/bin/sh
echo try >> "$DRIFTLESS_TEST_TRIES"
printf '%s\\n' "$DRIFTLESS_TEST_STDERR" >&2
exit 1
"""


@pytest.mark.parametrize(
    ("stderr", "error", "reason", "tries", "words"),
    [
        (
            'failed to create service shop_web: Error response from daemon: Get "https://'
            'registry.test:5000/v2/shop/web/manifests/2": net/http: request canceled while '
            "waiting for connection (Client.Timeout exceeded while awaiting headers)",
            DockerError,
            Reason.REGISTRY_UNAVAILABLE,
            3,
            "docker stack deploy failed 3 times: registry registry.test:5000 unreachable",
        ),
        (
            "failed to create service shop_web: Error response from daemon: network shop_back "
            "not found",
            DockerError,
            Reason.DOCKER_UNAVAILABLE,
            3,
            "docker stack deploy failed 3 times: Docker engine unreachable",
        ),
        (
            'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join".',
            DockerError,
            Reason.DOCKER_UNAVAILABLE,
            1,
            "docker stack deploy failed: Docker engine refused",
        ),
        (
            "services.web.deploy.replicas must be a integer",
            ApplyError,
            Reason.APPLY_FAILED,
            1,
            "docker stack deploy failed: services.web.deploy.replicas must be a integer",
        ),
    ],
)
async def test_a_failed_deploy_is_tried_again_only_for_trouble_that_passes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stderr: str,
    error: type[Exception],
    reason: Reason,
    tries: int,
    words: str,
) -> None:
    cli = tmp_path / "docker"
    cli.write_text(_CLI)
    cli.chmod(stat.S_IRWXU)
    counted = tmp_path / "tries"
    monkeypatch.setenv("DRIFTLESS_TEST_TRIES", str(counted))
    monkeypatch.setenv("DRIFTLESS_TEST_STDERR", stderr)
    swarm = _swarm(OSError("unused"), cli=str(cli))
    with pytest.raises(error) as caught:
        await swarm.deploy("shop", tmp_path / "stack.yml", prune=False, time_limit=30)
    assert isinstance(caught.value, ApplyError | DockerError)
    assert caught.value.reason == reason
    assert caught.value.message.startswith(words)
    assert caught.value.detail == stderr
    assert len(counted.read_text().split()) == tries


# ------------------------------------------------------------------ git


async def test_a_git_remote_that_does_not_answer_is_unavailable(tmp_path: Path) -> None:
    url = f"http://bot:{SECRET}@127.0.0.1:1/shop.git"  # nothing listens on port 1
    repo = GitRepo(GitConfig(url=url, path="desired-state/test", timeout=30), tmp_path, Masker())
    try:
        with pytest.raises(GitError) as caught:
            await repo.fetch()
    finally:
        repo.close()
    assert caught.value.reason == Reason.GIT_REMOTE_UNAVAILABLE
    assert "git remote unreachable: " in caught.value.message
    assert "127.0.0.1" in caught.value.detail
    assert SECRET not in caught.value.message + caught.value.detail


async def test_a_git_remote_that_is_not_a_repository_needs_a_human(tmp_path: Path) -> None:
    url = (tmp_path / "moved-away.git").as_uri()
    repo = GitRepo(
        GitConfig(url=url, path="desired-state/test", timeout=30), tmp_path / "c", Masker()
    )
    try:
        with pytest.raises(GitError) as caught:
            await repo.fetch()
    finally:
        repo.close()
    assert caught.value.reason == Reason.ARTIFACT_FAILED
    assert f"cannot fetch main from {url}: git remote refused: " in caught.value.message
