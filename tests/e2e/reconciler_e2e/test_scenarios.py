"""The reconciler driven like a user drives it, on a real single-node Docker Swarm with the local
registry and a real git remote: the seven scenarios of the engine's acceptance list.

Timeouts are short (health checks 6 s, Swarm monitor 1 s) to keep the suite fast; the behaviour
is the same as with production values.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import time

import pytest
from reconciler_support.e2e import (
    Env,
    images_yaml,
    revert_commits,
    sh,
    stack_yaml,
    stop,
    wait_for,
)

from reconciler.cli import (
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_PENDING,
    EXIT_REFUSED,
    EXIT_ROLLED_BACK,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _sync(env: Env, expect: int) -> str:
    result = env.cli("sync")
    assert result.returncode == expect, (
        f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout + result.stderr


def _metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_1_first_deploy_from_an_empty_swarm(env: Env) -> None:
    assert env.service("web") is None
    out = _sync(env, EXIT_OK)
    assert "success: ReconciliationSucceeded: deployed api, web" in out
    assert env.running_tags("web") == ["1"]
    assert env.running_tags("api") == ["1", "1"]
    assert env.served_version() == "1"
    labels = env.service("api")["Spec"]["Labels"]  # type: ignore[index]
    assert labels["driftless.revision"] == env.remote.head()
    assert re.fullmatch(r"[0-9a-f]{20}", labels["driftless.spec-hash"])
    status = env.status()
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] is True
    assert status["last_applied"]["sha"] == env.remote.head()
    assert status["history"][0]["result"] == "success"
    assert {s["name"]: s["replicas_running"] for s in status["inventory"]} == {"api": 2, "web": 1}
    # JSON log lines carry the revision and the phase
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    verify = [x for x in lines if x["phase"] == "verify"]
    assert verify
    assert verify[0]["revision"] == env.remote.head()
    # a progress line before each phase: the fetch (revision not known yet), then the others
    assert lines[0]["phase"] == "fetch"
    assert lines[0]["message"].startswith("fetching main from file://")
    phases = [x["phase"] for x in lines if x["revision"] == env.remote.head()]
    for phase in ("render", "plan", "preflight", "apply", "verify", "record"):
        assert phase in phases, phases
    # and the next pass has nothing to do
    assert "noop: InSync" in _sync(env, EXIT_OK)
    assert env.cli("diff").returncode == EXIT_OK


def test_2_tag_bump_is_rolled_out_verified_and_recorded_by_the_daemon(env: Env) -> None:
    _sync(env, EXIT_OK)
    first = env.remote.head()
    agent = env.start("run")
    try:
        wait_for("the agent's /metrics", lambda: "reconciler_passes_total" in env.metrics(), 30)
        # a second agent on the same state directory is refused
        second = env.cli("sync")
        assert second.returncode == EXIT_LOCKED
        assert "holds" in second.stderr
        bump = env.commit("Bump web and api to 2", web=env.images["2"], api=env.images["2"])
        wait_for(
            "the bump to be applied",
            lambda: _metric(env.metrics(), "reconciler_applied_revision_info", revision=bump),
            120,
        )
        assert env.running_tags("web") == ["2"]
        assert env.running_tags("api") == ["2", "2"]
        assert env.served_version() == "2"
        text = env.metrics()
        assert _metric(text, "reconciler_passes_total", result="success", stack=env.stack) == 1.0
        assert _metric(text, "reconciler_desired_revision_info", revision=bump) == 1.0
        assert _metric(text, "reconciler_services_out_of_sync") == 0.0
        assert _metric(text, "reconciler_service_in_sync", service="api") == 1.0
        assert _metric(text, "reconciler_service_replicas_running", service="api") == 2.0
        assert _metric(text, "reconciler_condition", type="Ready") == 1.0
        assert (_metric(text, "reconciler_verify_duration_seconds_count") or 0) >= 1
        assert _metric(text, "reconciler_rollbacks_total") == 0.0
    finally:
        assert stop(agent) == 0
    history = env.status()["history"]
    assert history[0]["revision"]["sha"] == bump or history[1]["revision"]["sha"] == bump
    deployed = next(h for h in history if h["result"] == "success" and h["revision"]["sha"] == bump)
    assert deployed["services"] == ["api", "web"]
    assert deployed["revision"]["subject"] == "Bump web and api to 2"
    assert any(h["revision"]["sha"] == first for h in history)


def test_3_a_bad_image_is_rolled_back_reverted_and_quarantined(env: Env) -> None:
    env.commit("Start at 2", web=env.images["2"], api=env.images["2"])
    _sync(env, EXIT_OK)
    bad = env.commit("Bump web and api to 3", web=env.images["3"], api=env.images["3"])
    started = time.monotonic()
    out = _sync(env, EXIT_ROLLED_BACK)
    elapsed = time.monotonic() - started
    assert "rolled_back: HealthCheckFailed: web" in out
    # every changed service is back on the previous image, healthy
    assert env.running_tags("web") == ["2"]
    assert env.running_tags("api") == ["2", "2"]
    assert env.served_version() == "2"
    # the revert, with the failed check and its output, is in the remote
    reverts = revert_commits(env.remote)
    assert len(reverts) == 1
    message = env.remote.message()
    assert message.startswith('Revert "Bump web and api to 3"')
    assert "HealthCheckFailed" in message
    assert "broken: database migration missing" in message  # the failed check's output
    assert f"This reverts commit {bad}." in message
    assert env.remote.show("desired-state/e2e/images.yaml") == images_yaml(
        env.images["2"], env.images["2"]
    )
    status = env.status()
    assert status["quarantine"][0]["revision"]["sha"] == bad
    assert status["reverts"][0]["commit"] == env.remote.head()
    assert status["last_result"] == "rolled_back"
    # the next passes stay quiet: nothing applied, nothing reverted again
    assert "noop: InSync" in _sync(env, EXIT_OK)
    assert "noop" in _sync(env, EXIT_OK)
    assert len(revert_commits(env.remote)) == 1
    assert next(c for c in env.status()["conditions"] if c["type"] == "Ready")["status"] is True
    print(f"failed deploy handled in {elapsed:.1f}s")


def test_4_invalid_yaml_and_missing_image_leave_live_untouched(env: Env) -> None:
    _sync(env, EXIT_OK)
    versions = {n: env.service(n)["Version"]["Index"] for n in ("web", "api")}  # type: ignore[index]
    env.commit("Break the YAML", images="web: [unclosed\n")
    result = env.cli("sync")
    assert result.returncode == EXIT_REFUSED
    assert "ValidationFailed" in result.stdout
    assert "images.yaml: invalid YAML" in result.stdout
    status = env.status()
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ValidationFailed"
    assert "images.yaml: invalid YAML" in ready["message"]
    assert next(c for c in status["conditions"] if c["type"] == "Stalled")["status"] is True

    env.commit("Bump to an image nobody pushed", web=env.images["missing"], api=env.images["1"])
    result = env.cli("sync")
    assert result.returncode == EXIT_REFUSED
    assert "PreflightFailed" in result.stdout
    assert f"image {env.images['missing']} does not exist" in result.stdout
    assert {n: env.service(n)["Version"]["Index"] for n in ("web", "api")} == versions  # type: ignore[index]
    assert env.running_tags("web") == ["1"]
    assert env.served_version() == "1"
    assert not revert_commits(env.remote)  # refusals are not reverted: nothing was deployed


def test_5_manual_scale_is_reported_and_healed(env: Env) -> None:
    _sync(env, EXIT_OK)
    sh("docker", "service", "scale", "-d", f"{env.stack}_api=3")
    diff = env.cli("diff")
    assert diff.returncode == EXIT_PENDING
    assert "~ api: update (drift: changed outside git)" in diff.stdout
    assert "replicas: 3 -> 2" in diff.stdout
    env.write_config(sync={"self_heal": False})
    out = _sync(env, EXIT_OK)
    assert "DriftDetected" in out
    assert env.replicas("api") == 3
    inventory = {s["name"]: s for s in env.status()["inventory"]}
    assert inventory["api"]["in_sync"] is False
    assert inventory["api"]["drift"][0]["field"] == "replicas"
    env.write_config(sync={"self_heal": True})
    assert "DriftCorrected" in _sync(env, EXIT_OK)
    assert env.replicas("api") == 2
    assert env.cli("diff").returncode == EXIT_OK


def test_5b_networks_mounts_placement_and_healthcheck_changed_by_hand_are_drift(
    env: Env,
) -> None:
    _sync(env, EXIT_OK)
    assert env.cli("diff").returncode == EXIT_OK  # what stack deploy made compares equal
    other = f"{env.stack}_handmade"
    sh("docker", "network", "create", "--driver", "overlay", "--attachable", other)
    try:
        sh("docker", "service", "update", "--detach", "--network-add", other,
           "--mount-add", "type=tmpfs,target=/scratch", "--constraint-add", "node.role==manager",
           "--health-cmd", "true", "--health-interval", "5s", f"{env.stack}_api")  # fmt: skip
        diff = env.cli("diff")
        assert diff.returncode == EXIT_PENDING, diff.stdout + diff.stderr
        assert "~ api: update (drift: changed outside git)" in diff.stdout
        assert f"networks: {env.stack}_back, {other} -> {env.stack}_back" in diff.stdout
        assert "mounts: tmpfs - /scratch rw -> (none)" in diff.stdout
        assert "placement: node.role==manager -> (none)" in diff.stdout
        assert "healthcheck: test=CMD-SHELL true; interval=5s -> (none)" in diff.stdout
        assert "DriftCorrected" in _sync(env, EXIT_OK)
        spec = env.service("api")
        assert spec is not None
        task = spec["Spec"]["TaskTemplate"]
        assert "Mounts" not in task["ContainerSpec"]
        assert "Healthcheck" not in task["ContainerSpec"]
        assert not (task.get("Placement") or {}).get("Constraints")
        assert len(task["Networks"]) == 1
        assert env.cli("diff").returncode == EXIT_OK
    finally:  # once no task uses it (a failed test leaves it to the stack's removal)
        for _ in range(60):
            if sh("docker", "network", "rm", other, check=False).returncode == 0:
                break
            time.sleep(1)


def test_6_a_service_removed_from_git_is_pruned_only_with_prune_on(env: Env) -> None:
    _sync(env, EXIT_OK)
    env.remote.write(
        {
            "desired-state/e2e/stack.yml": stack_yaml(env.port, env.prefix, api=False),
            "desired-state/e2e/images.yaml": images_yaml(env.images["1"], None),
        },
        "Retire the api",
    )
    _sync(env, EXIT_OK)
    assert env.service("api") is not None
    diff = env.cli("diff")
    assert "? api: orphan (removed from git; kept, prune off)" in diff.stdout
    assert diff.returncode == EXIT_OK  # nothing to apply
    env.write_config(sync={"prune": True})
    out = _sync(env, EXIT_OK)
    assert "deployed api" in out
    assert env.service("api") is None
    assert env.running_tags("web") == ["1"]


def test_7_killed_mid_apply_the_next_start_finishes_or_rolls_back_once(env: Env) -> None:
    _sync(env, EXIT_OK)
    # a good bump, interrupted by SIGTERM while it verifies: the next start finishes it
    good = env.commit("Bump web and api to 2", web=env.images["2"], api=env.images["2"])
    agent = env.start("run")
    wait_for("the verify phase", lambda: (env.journal() or {}).get("phase") == "verify", 60, 0.05)
    assert stop(agent, signal.SIGTERM, 30) == 0
    assert env.journal() is not None  # interrupted, not forgotten
    out = _sync(env, EXIT_OK)
    assert "resuming the pass interrupted" in out
    assert env.status()["last_applied"]["sha"] == good
    assert env.running_tags("api") == ["2", "2"]
    assert env.journal() is None

    # a bad bump, SIGKILLed while it verifies: the next start rolls back and reverts once
    bad = env.commit("Bump web and api to 3", web=env.images["3"], api=env.images["3"])
    agent = env.start("sync")
    wait_for("the verify phase", lambda: (env.journal() or {}).get("phase") == "verify", 60, 0.05)
    agent.kill()
    agent.wait(10)
    saved = env.state_dir / "journal.saved"
    shutil.copy(env.state_dir / "journal.json", saved)
    saved_status = env.state_dir / "status.saved"
    shutil.copy(env.state_dir / "status.json", saved_status)
    out = _sync(env, EXIT_ROLLED_BACK)
    assert "resuming the pass interrupted" in out
    assert env.running_tags("web") == ["2"]
    assert env.running_tags("api") == ["2", "2"]
    assert len(revert_commits(env.remote)) == 1
    assert env.remote.message().splitlines()[-1] == f"Driftless-Revert-Of: {bad}"

    # killed again after the revert was pushed but before it was recorded: no second revert,
    # and the status learns of the one that was pushed
    shutil.copy(saved, env.state_dir / "journal.json")
    shutil.copy(saved_status, env.state_dir / "status.json")
    assert env.status()["reverts"] == []
    _sync(env, EXIT_ROLLED_BACK)
    assert len(revert_commits(env.remote)) == 1
    assert [r["commit"] for r in env.status()["reverts"]] == [env.remote.head()]
    assert "noop" in _sync(env, EXIT_OK)
    assert len(revert_commits(env.remote)) == 1
    assert env.running_tags("web") == ["2"]


def test_sigterm_stops_a_one_shot_sync_safely(env: Env) -> None:
    _sync(env, EXIT_OK)
    bump = env.commit("Bump web and api to 2", web=env.images["2"], api=env.images["2"])
    proc = env.start("sync")
    wait_for("the verify phase", lambda: (env.journal() or {}).get("phase") == "verify", 60, 0.05)
    assert stop(proc, signal.SIGTERM, 20) == EXIT_INTERRUPTED
    status = env.status()
    reconciling = next(c for c in status["conditions"] if c["type"] == "Reconciling")
    assert reconciling["reason"] == "Interrupted"
    assert status["journal"]["phase"] == "verify"
    out = _sync(env, EXIT_OK)
    assert "resuming the pass interrupted" in out
    assert env.status()["last_applied"]["sha"] == bump
