"""Trust on a real single-node Swarm with the local registry and a real git remote: only
revisions signed by an allowed key reach the stack (real SSH keys made here, git's own
verification), and the agent's own revert is signed and trusted by its next pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reconciler_support.e2e import STACK_DIR, Env, images_yaml, revert_commits, sh
from reconciler_support.gitrepo import git
from reconciler_support.signing import SshKey

from reconciler.cli import EXIT_OK, EXIT_REFUSED, EXIT_ROLLED_BACK

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _sync(env: Env, expect: int) -> str:
    result = env.cli("sync")
    assert result.returncode == expect, (
        f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout + result.stderr


def _release(env: Env, tag: str, message: str, key: SshKey | None) -> str:
    files = {f"{STACK_DIR}/images.yaml": images_yaml(env.images[tag], env.images[tag])}
    return env.remote.write(files, message, sign=key)


def test_only_signed_revisions_reach_the_swarm(env: Env, tmp_path: Path) -> None:
    alice = SshKey.make(tmp_path, "alice", "alice@example.org")
    mallory = SshKey.make(tmp_path, "mallory", "mallory@example.org")
    agent = SshKey.make(tmp_path, "agent", "reconciler@example.org")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(alice.allowed_signer + "\n")
    env.write_config(
        git={
            "url": env.remote.url,
            "branch": "main",
            "path": STACK_DIR,
            "author_email": "reconciler@example.org",
            "signing_key_file": str(agent.private),
            "verify": {"mode": "head", "allowed_signers_file": str(allowed)},
        }
    )
    # the fixture's first commit is unsigned: refused, nothing deployed
    out = _sync(env, EXIT_REFUSED)
    assert "SignatureRefused" in out
    assert env.service("web") is None

    _release(env, "2", "Start at 2", alice)
    _sync(env, EXIT_OK)
    assert env.served_version() == "2"
    assert env.status()["last_applied"]["signed_by"].startswith("alice@example.org (key SHA256:")

    bad = _release(env, "3", "Bump web and api to 3", alice)
    _sync(env, EXIT_ROLLED_BACK)
    assert env.served_version() == "2"
    [revert] = revert_commits(env.remote)
    # the revert is signed by the agent's key, as git verifies it against that key
    both = tmp_path / "verify_signers"
    both.write_text(agent.allowed_signer + "\n")
    allow = f"gpg.ssh.allowedSignersFile={both}"
    sha = revert.split()[0]
    verdict = git(env.remote.bare, "-c", allow, "log", "-1", "--format=%G? %GS", sha)
    assert verdict == "G reconciler@example.org"
    assert f"Driftless-Revert-Of: {bad}" in env.remote.message()
    # ... and trusted by the next pass: a quiet noop, not a refusal of the agent's own commit
    assert "noop: InSync" in _sync(env, EXIT_OK)

    sneaked = _release(env, "1", "Go back to 1", mallory)
    out = _sync(env, EXIT_REFUSED)
    assert f"commit {sneaked[:12]} ('Go back to 1' by Dev <dev@example.org>)" in out
    assert "is signed by a key that is not in the allow-list: key SHA256:" in out
    assert env.running_tags("web") == ["2"]
    assert env.running_tags("api") == ["2", "2"]
    assert env.served_version() == "2"
    assert len(revert_commits(env.remote)) == 1  # the refusal reverts nothing


def test_images_run_by_digest_and_a_tag_pushed_again_is_reported_not_rolled_out(
    env: Env, unique_name: str
) -> None:
    """The real local registry: a tag of our own, pushed again with other content while the
    stack runs it."""
    repo = env.images["1"].rsplit("/", 1)[0] + f"/pinned-{unique_name}"
    moving = f"{repo}:stable"
    sh("docker", "tag", env.images["1"], moving)
    sh("docker", "push", "-q", moving)
    pushed = sh("docker", "image", "inspect", "--format", "{{json .RepoDigests}}", moving).stdout
    first = next(d.split("@")[1] for d in json.loads(pushed) if d.startswith(f"{repo}@"))
    files = {f"{STACK_DIR}/images.yaml": images_yaml(moving, env.images["1"])}
    env.remote.write(files, "Run web from the stable tag")
    _sync(env, EXIT_OK)
    spec = env.service("web")
    assert spec is not None
    running = spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert running.startswith(f"{moving}@sha256:")
    digest = running.split("@", 1)[1]
    assert digest == first  # the digest the registry gave at pre-flight
    inventory = {s["name"]: s for s in env.status()["inventory"]}
    assert inventory["web"]["live_digest"] == digest

    # the tag is pushed again with version 2's content
    sh("docker", "tag", env.images["2"], moving)
    sh("docker", "push", "-q", moving)
    out = _sync(env, EXIT_OK)
    assert "noop" in out
    inventory = {s["name"]: s for s in env.status()["inventory"]}
    assert "was pushed again" in inventory["web"]["tag_moved"]
    assert env.served_version() == "1"
    # a release of api deploys the whole stack: web stays on its digest
    env.remote.write(
        {f"{STACK_DIR}/images.yaml": images_yaml(moving, env.images["2"])}, "Bump api to 2"
    )
    _sync(env, EXIT_OK)
    spec = env.service("web")
    assert spec is not None
    assert spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == running
    assert env.served_version() == "1"
    assert env.running_tags("api") == ["2", "2"]
