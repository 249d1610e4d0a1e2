"""Staging and production from one repository on the real single-node Swarm, with the local
registry and a real git remote: a release verified in staging is proposed to production by
digest, in a pull request opened on a stand-in GitHub API on loopback
(``reconciler_support.forgeserver``: GitHub cannot be reached from here); a bad release fails in
staging and is never proposed; production keeps serving throughout and, once the pull request is
merged, runs exactly the digests staging verified."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reconciler_support.e2e import (
    STACK_DIR,
    Env,
    free_port,
    images_yaml,
    revert_commits,
    sh,
    stack_yaml,
)
from reconciler_support.forgeserver import Pull, StandInForge
from reconciler_support.gitrepo import git

from reconciler.cli import EXIT_OK, EXIT_ROLLED_BACK
from scripts.remove_stack import remove_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROD_DIR = "desired-state/prod"
TOKEN = "promotion-token-51c2"


class Forge:
    """The stand-in GitHub API, served from a thread of its own (the test itself is sync)."""

    def __init__(self, branches: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = StandInForge("github", TOKEN, branches)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)

    @property
    def pulls(self) -> list[Pull]:
        return list(self.server.pulls)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def forge(env: Env) -> Iterator[Forge]:
    def branches() -> set[str]:
        out = git(env.remote.bare, "for-each-ref", "--format=%(refname:short)", "refs/heads")
        return set(out.split())

    served = Forge(branches)
    try:
        yield served
    finally:
        served.close()


def _sync(env: Env, config: Path, expect: int) -> str:
    """``reconciler sync`` of the agent whose configuration is ``config``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    result = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "--config", str(config), "sync"],
        capture_output=True, text=True, timeout=300, check=False, env=environ,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == expect, f"exit {result.returncode}\n{out}"
    return out


def _merge(env: Env, branch: str) -> None:
    """The pull request is merged (a fast-forward of main, as the forge's merge button would)."""
    git(env.remote.work, "fetch", "-q", "origin")
    git(env.remote.work, "checkout", "-q", "main")
    git(env.remote.work, "pull", "-q", "--ff-only", "origin", "main")
    git(env.remote.work, "merge", "-q", "--no-edit", f"origin/{branch}")
    git(env.remote.work, "push", "-q", "origin", "HEAD:main")


def _served(port: int) -> str:
    out = sh("curl", "-fsS", "--max-time", "5", f"http://127.0.0.1:{port}/version").stdout
    return str(json.loads(out)["version"])


def _running(stack: str, service: str) -> str:
    spec = json.loads(sh("docker", "service", "inspect", f"{stack}_{service}").stdout)[0]
    return str(spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])


def test_a_release_verified_in_staging_is_promoted_to_production_by_digest(
    env: Env, forge: Forge, tmp_path: Path
) -> None:
    prod_stack, prod_port = f"{env.stack}p", free_port()
    env.remote.write(
        {
            f"{PROD_DIR}/stack.yml": stack_yaml(prod_port, env.prefix),
            f"{PROD_DIR}/images.yaml": images_yaml(env.images["1"], env.images["1"]),
        },
        "Add production",
    )
    token = tmp_path / "forge-token"
    token.write_text(TOKEN + "\n")
    forge_section = {
        "kind": "github",
        "api_url": forge.server.api_url,
        "repository": "acme/shop",
        "token_file": str(token),
    }
    env.write_config(forge=forge_section, promote={"path": PROD_DIR, "environment": "production"})
    staging = env.config_path
    prod = tmp_path / "production.json"
    config = json.loads(staging.read_text())
    config.update(
        stack=prod_stack,
        environment="production",
        state_dir=str(tmp_path / "prod-state"),
        git={**config["git"], "path": PROD_DIR},
        http={"bind": "127.0.0.1", "port": free_port()},
    )
    config.pop("promote")
    config.pop("forge")
    prod.write_text(json.dumps(config))
    try:
        # both environments deployed at 1; staging proposes production's images by digest
        _sync(env, staging, EXIT_OK)
        _sync(env, prod, EXIT_OK)
        assert _served(prod_port) == "1"
        [first] = forge.pulls
        assert first.head.startswith("driftless/promote-")
        _merge(env, first.head)
        _sync(env, prod, EXIT_OK)
        assert _running(prod_stack, "web") == _running(env.stack, "web")

        # a good release in staging: proposed with the digest staging verified
        files = {f"{STACK_DIR}/images.yaml": images_yaml(env.images["2"], env.images["2"])}
        good = env.remote.write(files, "Bump staging to 2")
        _sync(env, staging, EXIT_OK)
        assert env.served_version() == "2"
        assert _served(prod_port) == "1"  # production untouched until the merge
        [_, second] = forge.pulls
        assert second.head == f"driftless/promote-{good[:12]}"
        verified = _running(env.stack, "web")
        assert verified.startswith(f"{env.images['2']}@sha256:")
        assert f"- web: {verified}" in second.body
        assert "Verification in e2e:" in second.body
        proposed = git(env.remote.bare, "show", f"{second.head}:{PROD_DIR}/images.yaml")
        assert f"web: {verified}" in proposed

        # a bad release fails in staging and is never proposed; production keeps serving
        files = {f"{STACK_DIR}/images.yaml": images_yaml(env.images["3"], env.images["3"])}
        env.remote.write(files, "Bump staging to 3")
        _sync(env, staging, EXIT_ROLLED_BACK)
        assert len(revert_commits(env.remote)) == 1
        _sync(env, staging, EXIT_OK)  # the revert: in sync
        assert len(forge.pulls) == 2
        assert _served(prod_port) == "1"

        # the promotion merged: production runs exactly what staging verified
        _merge(env, second.head)
        _sync(env, prod, EXIT_OK)
        assert _served(prod_port) == "2"
        assert _running(prod_stack, "web") == verified
    finally:
        remove_stack(prod_stack, extra_labels=(f"driftless.probe={prod_stack}",))
