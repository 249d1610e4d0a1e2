"""The canary step's decisions, from what a real Swarm said about a rolling update held after
its first task (``tests/fixtures/swarm/canary-held.json``) and the other recorded states."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from reconciler.canary import Step, TaskChecks, canary_tasks, per_task
from reconciler.models import CheckResult, HealthCheck
from reconciler.serialize import parse_time
from reconciler.task_views import ServiceTasks, TaskView, service_tasks

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "swarm"


def _recorded(name: str) -> tuple[ServiceTasks, datetime]:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    return service_tasks(data["service"], data["tasks"]), parse_time(data["since"])


def test_a_held_update_has_its_canary_running_beside_the_old_tasks() -> None:
    tasks, since = _recorded("canary-held")
    assert tasks.update_state == "updating"
    assert len(tasks.new) == 1
    verdict = canary_tasks(tasks, 1, since)
    assert verdict.step == Step.ANALYSING
    [canary] = verdict.running
    assert canary.current
    assert canary.addresses["capture-net"].startswith("10.0.1.")
    # asking for two canary tasks: only one runs yet
    waiting = canary_tasks(tasks, 2, since)
    assert waiting.step == Step.WAITING
    assert waiting.message.startswith("1/2 canary task(s) running")


def test_a_new_task_that_exits_fails_the_canary_at_once() -> None:
    tasks, since = _recorded("tasks-failing")
    verdict = canary_tasks(tasks, 1, since)
    assert verdict.step == Step.FAILED
    assert verdict.message.startswith("a new task exited: task: non-zero exit")
    # failures from before the change are not the new spec's
    assert canary_tasks(tasks, 1, since + timedelta(hours=1)).step != Step.FAILED


def test_a_canary_task_whose_pinned_image_was_not_served_is_the_registrys_fault() -> None:
    data = json.loads((FIXTURES / "tasks-failing.json").read_text())
    err = f"No such image: 127.0.0.1:5001/app:2@sha256:{'ab' * 32}"
    for task in data["tasks"]:
        task["Status"] = {**task["Status"], "Err": err}
    tasks, since = service_tasks(data["service"], data["tasks"]), parse_time(data["since"])
    verdict = canary_tasks(tasks, 1, since)
    assert verdict.step == Step.FAILED
    assert verdict.registry
    assert verdict.message.startswith("registry 127.0.0.1:5001 did not serve the image")


def test_a_canary_task_the_engine_could_not_start_is_the_engines_fault() -> None:
    """Swarm's overlay handed the task an address its node still held (moby/moby#24486): the
    canary is not the revision's failure (rolled back, tried again, no revert)."""
    data = json.loads((FIXTURES / "tasks-failing.json").read_text())
    for task in data["tasks"]:
        task["Status"] = {
            **task["Status"],
            "Err": "starting container failed: Address already in use",
        }
    tasks, since = service_tasks(data["service"], data["tasks"]), parse_time(data["since"])
    verdict = canary_tasks(tasks, 1, since)
    assert (verdict.step, verdict.engine, verdict.registry) == (Step.FAILED, True, False)
    assert verdict.message == (
        "the engine could not start a canary task: "
        "starting container failed: Address already in use"
    )


def test_swarm_pausing_or_undoing_the_update_fails_the_canary() -> None:
    for name, state in (("update-paused", "paused"), ("update-rollback-completed", "rollback")):
        tasks, since = _recorded(name)
        verdict = canary_tasks(tasks, 1, since)
        assert verdict.step == Step.FAILED
        assert verdict.message.startswith(f"Swarm update {state}")


def test_a_service_gone_fails_the_canary() -> None:
    verdict = canary_tasks(ServiceTasks(exists=False), 1, datetime.now())
    assert verdict.step == Step.FAILED


def _task(slot: int, ip: str) -> TaskView:
    return TaskView(
        id=f"t{slot}", slot=slot, current=True, desired="running", state="running", since=None,
        message="", addresses={"shop_edge": ip},
    )  # fmt: skip


def test_each_canary_task_is_checked_at_its_own_address() -> None:
    check = HealthCheck(name="api", url="http://api:3000/version", network="shop_edge")
    checks = per_task(check, [_task(1, "10.0.1.7"), _task(2, "10.0.1.9")])
    assert [(c.name, c.url) for c in checks] == [
        ("api task 1", "http://10.0.1.7:3000/version"),
        ("api task 2", "http://10.0.1.9:3000/version"),
    ]
    # a published port cannot be sent to one task: the check stays as it is
    direct = HealthCheck(name="web", url="http://127.0.0.1:18080/health")
    assert per_task(direct, [_task(1, "10.0.1.7")]) == [direct]


def test_only_a_wrong_version_is_definitive() -> None:
    checks = TaskChecks().add(
        [
            CheckResult("api task 1", ok=False, output="ClientConnectorError"),
            CheckResult("api task 2", ok=True, output="HTTP 200"),
        ]
    )
    assert checks.definitive is None
    assert [r.name for r in checks.failing] == ["api task 1"]
    wrong = CheckResult("api task 1", ok=False, output="version 3 is not served", definitive=True)
    assert checks.add([wrong]).definitive == wrong
    # the latest answer of each task counts
    assert not checks.add([CheckResult("api task 1", ok=True)]).failing
