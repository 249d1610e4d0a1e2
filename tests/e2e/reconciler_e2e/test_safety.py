"""More of the engine's promises on the real Swarm, the local registry and a real git remote:
pre-flight refuses a stack whose external secrets, configs or networks do not exist; a dry run
changes nothing; a failure that only Swarm sees (a Docker HEALTHCHECK, Swarm rolling back on its
own) still rolls back every changed service and reverts the commit; SIGTERM during the apply lets
the apply finish; an agent killed during the apply finishes that pass at its next start; a
revert that cannot be applied pushes nothing, stalls and alerts.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from reconciler_support.agents import opened_agent
from reconciler_support.e2e import Env, revert_commits, stack_yaml, stop, wait_for
from web_support.receiver import Receiver, running_receiver

from reconciler.agent import Agent
from reconciler.cli import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PENDING,
    EXIT_REFUSED,
    EXIT_ROLLED_BACK,
    EXIT_TRANSIENT,
)
from reconciler.config import load_config
from reconciler.daemon import Daemon
from reconciler.events import RecordingNotifier
from reconciler.models import PassResult, Phase
from reconciler.outcome import PassOutcome

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def _sync(env: Env, expect: int, *args: str) -> str:
    result = env.cli("sync", *args)
    assert result.returncode == expect, (
        f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout + result.stderr


def _condition(env: Env, kind: str) -> dict[str, object]:
    return next(c for c in env.status()["conditions"] if c["type"] == kind)


def test_preflight_refuses_missing_external_objects_and_dry_run_changes_nothing(
    env: Env, receiver: Receiver
) -> None:
    # `reconciler sync` sends the daemon's chat alerts too (here to a generic webhook)
    hook = env.root / "webhook_url"
    hook.write_text(f"{receiver.url}/hook\n")
    env.write_config(notify={"webhook_url_file": str(hook), "retries": 0})
    missing = f"{env.stack}-never-created"
    stack = stack_yaml(env.port, env.prefix, extra="    secrets: [token]\n    configs: [site]\n")
    stack += f"""  outside:
    external: true
    name: {missing}-net
secrets:
  token:
    external: true
    name: {missing}-secret
configs:
  site:
    external: true
    name: {missing}-config
"""
    env.commit("Use the shared token, site config and network", stack=stack)
    result = env.cli("sync")
    assert result.returncode == EXIT_REFUSED, result.stdout + result.stderr
    assert "PreflightFailed" in result.stdout
    for what in (f"secret {missing}-secret", f"config {missing}-config", f"network {missing}-net"):
        assert f"{what} does not exist (declared external)" in result.stdout
    assert env.service("web") is None  # nothing was deployed
    assert env.service("api") is None
    ready = _condition(env, "Ready")
    assert ready["reason"] == "PreflightFailed"
    assert f"secret {missing}-secret does not exist" in str(ready["message"])
    [alert] = receiver.to("/hook")  # delivered before the command exited
    assert alert.body["kind"] == "revision_refused"
    assert alert.body["reason"] == "PreflightFailed"
    assert alert.body["revision"]["subject"] == "Use the shared token, site config and network"
    assert f"{missing}-secret" in json.dumps(alert.body)
    # the same refusal again is not announced twice
    assert env.cli("sync").returncode == EXIT_REFUSED
    assert len(receiver.to("/hook")) == 1

    # a secret a service uses but the file never declares is refused at render time
    undeclared = stack_yaml(env.port, env.prefix, extra="    secrets: [nowhere]\n")
    env.commit("Use an undeclared secret", stack=undeclared)
    result = env.cli("sync")
    assert result.returncode == EXIT_REFUSED
    assert "'nowhere' is not defined under secrets:" in result.stdout
    assert env.service("web") is None

    # a dry run plans the good revision but applies nothing
    env.commit("Back to the plain stack", stack=stack_yaml(env.port, env.prefix))
    out = _sync(env, EXIT_OK, "--dry-run")
    assert "noop: DryRun: 2 change(s) pending, not applied (dry run)" in out
    assert env.service("web") is None
    assert env.service("api") is None
    assert env.cli("diff").returncode == EXIT_PENDING
    assert not revert_commits(env.remote)


def test_a_failure_only_swarm_sees_rolls_back_every_changed_service(env: Env) -> None:
    env.commit(
        "Health-check web in Docker", stack=stack_yaml(env.port, env.prefix, swarm_health=True)
    )
    _sync(env, EXIT_OK)
    assert env.running_tags("web") == ["1"]
    bad = env.commit("Bump web and api to 3", web=env.images["3"], api=env.images["3"])
    out = _sync(env, EXIT_ROLLED_BACK)
    # web has no HTTP check of the reconciler: only Swarm's view (unhealthy tasks, its own
    # rollback) can fail it, and that fails the whole pass
    assert re.search(
        r"rolled_back: HealthCheckFailed: web: "
        r"(Swarm update (rollback_\w+|paused)|\d+ tasks of the new spec failed"
        r"|not converged after)",
        out,
    ), out
    assert env.running_tags("web") == ["1"]
    assert env.running_tags("api") == ["1", "1"]  # healthy on 3, rolled back with web
    assert env.image_tag("api") == "1"
    assert env.served_version() == "1"
    assert len(revert_commits(env.remote)) == 1
    assert env.remote.message().splitlines()[-1] == f"Driftless-Revert-Of: {bad}"
    assert env.status()["quarantine"][0]["revision"]["sha"] == bad
    assert "noop: InSync" in _sync(env, EXIT_OK)


def _paused_deploy_cli(env: Env) -> Path:
    """The real docker CLI behind a wrapper that waits 3 s before ``stack deploy`` and writes its
    pid to ``deploy.pid`` first, so a test can stop the agent while it is applying."""
    real = shutil.which("docker")
    assert real is not None
    wrapper = env.root / "docker-paused-deploy"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = stack ] && [ "$2" = deploy ]; then\n'
        f"  echo $$ > {env.root / 'deploy.pid'}\n"
        "  sleep 3\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def _start_until_deploy(env: Env) -> tuple[subprocess.Popen[str], int]:
    """Start ``reconciler sync`` and wait until it runs ``docker stack deploy`` (paused)."""
    marker = env.root / "deploy.pid"
    marker.unlink(missing_ok=True)
    proc = env.start("sync")
    try:
        wait_for("docker stack deploy to start", marker.exists, 60, 0.05)
        pid = int(wait_for("its pid", lambda: marker.read_text().strip(), 5, 0.05))
        assert env.journal()["phase"] == "apply"  # type: ignore[index]
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return proc, pid


def test_sigterm_during_apply_lets_it_finish_and_a_kill_during_apply_is_resumed(
    env: Env,
) -> None:
    _sync(env, EXIT_OK)
    env.write_config(
        docker={"probe_labels": {"driftless.test": env.prefix}, "cli": str(_paused_deploy_cli(env))}
    )
    bump = env.commit("Bump web and api to 2", web=env.images["2"], api=env.images["2"])
    proc, _ = _start_until_deploy(env)
    assert stop(proc, signal.SIGTERM, 60) == EXIT_INTERRUPTED
    log = (env.root / "agent.log").read_text()
    assert "SIGTERM: letting the apply phase finish, then stopping" in log
    assert "never retrieved" not in log  # it stopped cleanly
    # the deploy ran to its end (every service carries the new revision) and the journal moved
    # on to verify, where the next start picks the pass up
    assert env.journal()["phase"] == "verify"  # type: ignore[index]
    for name in ("web", "api"):
        assert env.service(name)["Spec"]["Labels"]["driftless.revision"] == bump  # type: ignore[index]
    out = _sync(env, EXIT_OK)
    assert "resuming the pass interrupted in phase verify" in out
    assert env.status()["last_applied"]["sha"] == bump
    assert env.running_tags("api") == ["2", "2"]

    # killed with its children (as systemd stops a unit) while docker stack deploy has not
    # finished: nothing was deployed; the next start deploys that revision and verifies it
    back = env.commit("Back to 1", web=env.images["1"], api=env.images["1"])
    proc, deploy = _start_until_deploy(env)
    os.kill(deploy, signal.SIGKILL)
    proc.kill()
    proc.wait(10)
    assert env.journal()["phase"] == "apply"  # type: ignore[index]
    assert env.image_tag("api") == "2"
    out = _sync(env, EXIT_OK)
    assert "resuming the pass interrupted in phase apply" in out
    assert env.status()["last_applied"]["sha"] == back
    assert env.running_tags("web") == ["1"]
    assert env.running_tags("api") == ["1", "1"]
    assert env.journal() is None
    assert not revert_commits(env.remote)


async def test_a_revert_that_cannot_apply_pushes_nothing_stalls_and_alerts(env: Env) -> None:
    """The failing check is a global one from the agent's config; while the bad revision is
    being verified someone pushes a hotfix on the same line, so the revert cannot apply."""
    env.write_config(health=_global_api_check(env))
    recorder = RecordingNotifier()
    hotfix: list[str] = []
    env.settings["hotfix"] = False
    first = await _one_pass(env, recorder, hotfix)
    assert first.result == PassResult.SUCCESS, first.message
    global_check = next(c for c in first.checks if c.name == "api-health")
    assert global_check.ok
    assert global_check.url == "http://api:8080/health"

    bad = env.commit("Bump api to 3", web=env.images["1"], api=env.images["3"])
    env.settings["hotfix"] = True
    out = await _one_pass(env, recorder, hotfix)
    assert out.result == PassResult.ROLLED_BACK
    assert out.stalled
    assert out.message.startswith("api-health: still failing after 6s")
    assert "RevertFailed: cannot revert" in out.message
    assert "nothing was pushed" in out.message
    # nothing pushed: the remote's head is the hotfix, no revert commit anywhere
    assert hotfix
    assert env.remote.head() == hotfix[0]
    assert not revert_commits(env.remote)
    # live is back on the last good revision; the bad one is quarantined
    assert env.running_tags("api") == ["1", "1"]
    status = env.status()
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] is True
    assert stalled["reason"] == "RevertFailed"
    assert status["quarantine"][0]["revision"]["sha"] == bad
    kinds = [e.kind.value for e in recorder.events]
    assert kinds[-2:] == ["deploy_failed", "stalled"]
    alert = recorder.events[-1]
    assert alert.reason == "RevertFailed"  # type: ignore[attr-defined]
    assert "nothing was pushed" in alert.message  # type: ignore[attr-defined]

    # the hotfix is the next revision: it deploys, and the stall is over
    env.settings["hotfix"] = False
    after = await _one_pass(env, recorder, hotfix)
    assert after.result == PassResult.SUCCESS, after.message
    assert env.running_tags("api") == ["2", "2"]
    stalled = next(c for c in env.status()["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] is False


def _global_api_check(env: Env) -> dict[str, object]:
    """The agent's health settings with one global check: the api's /health on the back network."""
    return {
        "probe_image": env.base_image,
        "timeout": "6s",
        "interval": "500ms",
        "checks": [
            {
                "name": "api-health",
                "url": "http://api:8080/health",
                "network": "back",
                "timeout": "6s",
                "interval": "500ms",
            },
        ],
    }


async def _one_pass(env: Env, recorder: RecordingNotifier, hotfixes: list[str]) -> PassOutcome:
    """One manual pass of a new agent; when env.settings["hotfix"] is set, a hotfix is pushed
    while the pass verifies, and its SHA added to HOTFIXES."""
    async with opened_agent(load_config(env.config_path, {}), notifiers=(recorder,)) as agent:
        watch = asyncio.create_task(_hotfix_during_verify(env, agent))
        try:
            return await Daemon(agent).sync_once("manual")
        finally:
            if not watch.done():
                watch.cancel()
            elif (sha := watch.result()) is not None:
                hotfixes.append(sha)


async def _hotfix_during_verify(env: Env, agent: Agent) -> str | None:
    if not env.settings["hotfix"]:
        return None
    while agent.status.phase != Phase.VERIFY:
        await asyncio.sleep(0.05)
    return await asyncio.to_thread(
        env.commit, "Hotfix: api to 2", web=env.images["1"], api=env.images["2"]
    )


def test_an_unreachable_remote_is_a_transient_error_that_changes_nothing(env: Env) -> None:
    gone = env.root / "moved-away.git"
    config = json.loads(env.config_path.read_text())
    config["git"]["url"] = gone.as_uri()
    env.config_path.write_text(json.dumps(config))
    result = env.cli("sync")
    assert result.returncode == EXIT_TRANSIENT, result.stdout + result.stderr
    assert result.stdout.startswith("error: ArtifactFailed: cannot fetch main from file://")
    assert env.service("web") is None
    status = env.status()
    assert status["history"][0]["reason"] == "ArtifactFailed"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] is False
    assert ready["reason"] == "ArtifactFailed"


def test_a_change_that_never_converges_times_out_and_is_rolled_back(env: Env) -> None:
    config = json.loads(env.config_path.read_text())
    config["timeouts"]["verify"] = "5s"
    env.config_path.write_text(json.dumps(config))
    _sync(env, EXIT_OK)
    plain = stack_yaml(env.port, env.prefix)

    def with_deploy(line: str) -> str:
        changed = plain.replace(
            "      endpoint_mode: dnsrr\n", "      endpoint_mode: dnsrr\n" + line, 1
        )
        assert changed != plain
        return changed

    # a placement no node meets is refused before anything is touched, naming the constraint
    nowhere = "      placement: {constraints: [node.labels.driftless-nowhere == true]}\n"
    env.commit("Pin web to a node that does not exist", stack=with_deploy(nowhere))
    out = _sync(env, EXIT_REFUSED)
    assert (
        "web: no node meets the placement constraint `node.labels.driftless-nowhere == true`"
    ) in out
    assert "Constraints" not in env.service("web")["Spec"]["TaskTemplate"].get("Placement", {})  # type: ignore[index]
    assert not revert_commits(env.remote)

    # more CPU reserved than the node has: Swarm keeps the task pending, the pass times out
    greedy = "      resources: {reservations: {cpus: '512'}}\n"
    bad = env.commit("Reserve more CPUs than any node has", stack=with_deploy(greedy))
    out = _sync(env, EXIT_ROLLED_BACK)
    assert "rolled_back: HealthCheckFailed: web: not converged after 5s" in out
    assert env.running_tags("web") == ["1"]
    assert env.served_version() == "1"
    resources = env.service("web")["Spec"]["TaskTemplate"].get("Resources", {})  # type: ignore[index]
    assert "Reservations" not in resources or not resources["Reservations"].get("NanoCPUs")
    assert env.remote.message().splitlines()[-1] == f"Driftless-Revert-Of: {bad}"
    # the revert undoes every commit since the last applied revision, the refused one too
    assert env.remote.show("desired-state/e2e/stack.yml") == plain
