"""Has Swarm finished rolling out a service? Decided from what the Docker Engine API said on a
real Swarm in each state (``tests/fixtures/swarm/*.json``, recorded by ``capture.py`` there)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.convergence import Convergence, judge, settled, timed_out
from reconciler.serialize import parse_time

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "swarm"


def _recorded(name: str) -> tuple[dict[str, Any], list[dict[str, Any]], datetime]:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    return data["service"], data["tasks"], parse_time(data["since"])


def _later(since: datetime) -> datetime:
    """When the verify reads them: past every task's monitor window."""
    return since + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("recorded", "state", "message"),
    [
        ("converged", Convergence.CONVERGED, "2/2 tasks running the new spec"),
        ("rolling", Convergence.PENDING, "Swarm rolling update in progress"),
        (
            "previous-spec-stopping",
            Convergence.PENDING,
            "1 task(s) of the previous spec still stopping",
        ),
        ("tasks-failing", Convergence.FAILED, "tasks of the new spec failed: task: non-zero exit"),
        ("update-paused", Convergence.FAILED, "Swarm update paused"),
        ("update-rollback-completed", Convergence.FAILED, "Swarm update rollback_completed"),
        ("job-complete", Convergence.CONVERGED, "job complete (1 tasks)"),
    ],
)
def test_each_recorded_state(recorded: str, state: Convergence, message: str) -> None:
    service, tasks, since = _recorded(recorded)
    progress = judge(service, tasks, since, _later(since))
    assert progress.state == state
    assert message in progress.message


def test_an_update_paused_because_swarm_stopped_a_task_on_a_drained_node_is_resumed() -> None:
    """Recorded on the multi-node Swarm (scripts/swarm-nodes.sh): a worker drained during a
    start-first update. Swarm pauses the update for the "early termination" of the new task it
    stopped on that node itself: not the revision's fault, so the verify resumes the update."""
    service, tasks, since = _recorded("update-paused-drained")
    assert service["UpdateStatus"]["State"] == "paused"
    progress = judge(service, tasks, since, _later(since))
    assert progress.state == Convergence.PENDING
    assert progress.resume is True
    assert "drained" in progress.message


def test_an_update_paused_because_the_named_task_failed_is_the_revisions() -> None:
    service, tasks, since = _recorded("update-paused-drained")
    named = service["UpdateStatus"]["Message"].rsplit(" ", 1)[1]
    failed = [
        {**t, "Status": {**t["Status"], "State": "failed", "Err": "task: non-zero exit (1)"}}
        if t["ID"] == named
        else t
        for t in tasks
    ]
    progress = judge(service, failed, since, _later(since))
    assert progress.state == Convergence.FAILED
    assert progress.resume is False
    # the message says what became of that task, so a person sees why without `service ps`
    assert "(that task: failed, desired shutdown: task: non-zero exit (1))" in progress.message
    # a task that stopped with no error while Swarm still wanted it running ended by itself
    ended = [{**t, "DesiredState": "running"} if t["ID"] == named else t for t in tasks]
    assert judge(service, ended, since, _later(since)).state == Convergence.FAILED


def _named_failed(err: str) -> tuple[dict[str, Any], list[dict[str, Any]], datetime]:
    """The recorded paused update, its named task failed with ``err``."""
    service, tasks, since = _recorded("update-paused-drained")
    named = service["UpdateStatus"]["Message"].rsplit(" ", 1)[1]
    failed = [
        {**t, "Status": {**t["Status"], "State": "failed", "Err": err}} if t["ID"] == named else t
        for t in tasks
    ]
    return service, failed, since


def test_an_update_paused_because_the_engine_could_not_start_the_task_is_resumed() -> None:
    """Right after the managers regain quorum, Swarm's overlay can hand a new task an address its
    node still holds: the engine cannot start the container ("Address already in use",
    moby/moby#24486) and Swarm pauses the update for that task. The engine's trouble, not the
    revision's: the verify resumes the update, and says a timeout after it is the engine's."""
    service, tasks, since = _named_failed("starting container failed: Address already in use")
    progress = judge(service, tasks, since, _later(since))
    assert progress.state == Convergence.PENDING
    assert (progress.resume, progress.engine) == (True, True)
    assert "engine could not start task" in progress.message
    assert "Address already in use" in progress.message
    late = timed_out("web", progress.message, 60, 30, 60.1, engine=True)
    assert (late.ok, late.kind) == (False, "engine")
    # a published port the host already uses is the stack's to fix: the revision's
    service, tasks, since = _named_failed(
        "starting container failed: driver failed programming external connectivity on "
        "endpoint x: Error starting userland proxy: listen tcp4 0.0.0.0:8080: bind: address "
        "already in use"
    )
    assert judge(service, tasks, since, _later(since)).state == Convergence.FAILED


def test_tasks_the_engine_could_not_start_do_not_count_as_the_new_specs_failures() -> None:
    service, tasks, since = _recorded("tasks-failing")
    engine = [
        {**t, "Status": {**t["Status"], "Err": "starting container failed: Address already in use"}}
        for t in tasks
    ]
    assert judge(service, tasks, since, _later(since)).state == Convergence.FAILED
    assert judge(service, engine, since, _later(since)).state == Convergence.PENDING


def test_a_service_that_is_not_there_is_gone() -> None:
    assert judge(None, [], datetime.now(), datetime.now()).state == Convergence.GONE


def test_failures_from_before_the_change_are_not_the_new_specs() -> None:
    """A later pass is not failed by what went wrong before it: Swarm's old paused update and
    tasks that failed earlier are history once something new was deployed."""
    service, tasks, since = _recorded("tasks-failing")
    later = since + timedelta(hours=1)
    assert judge(service, tasks, later, _later(later)).state == Convergence.PENDING
    service, tasks, since = _recorded("update-paused")
    later = since + timedelta(hours=1)
    assert judge(service, tasks, later, _later(later)).state != Convergence.FAILED


def test_a_task_of_the_previous_spec_still_wanted_keeps_it_pending() -> None:
    service, tasks, since = _recorded("rolling")
    old = [t for t in tasks if t["DesiredState"] == "running"]
    service = {**service, "UpdateStatus": {**service["UpdateStatus"], "State": "completed"}}
    progress = judge(service, old, since, _later(since))
    assert progress.state == Convergence.PENDING
    assert "still run the previous spec" in progress.message


def test_the_verify_result_of_each_state() -> None:
    service, tasks, since = _recorded("converged")
    done = settled(
        "web", judge(service, tasks, since, _later(since)), removed=False, attempts=2, elapsed=1.5
    )
    assert done is not None
    assert (done.ok, done.kind, done.attempts) == (True, "swarm", 2)
    service, tasks, since = _recorded("rolling")
    assert (
        settled(
            "web", judge(service, tasks, since, _later(since)), removed=False, attempts=1, elapsed=0
        )
        is None
    )
    # a service the pass removed is waited for until it is gone
    assert (
        settled(
            "old", judge(service, tasks, since, _later(since)), removed=True, attempts=1, elapsed=0
        )
        is None
    )
    gone = settled("old", judge(None, [], since, since), removed=True, attempts=1, elapsed=0)
    assert gone is not None
    assert (gone.ok, gone.output) == (True, "removed")
    late = timed_out("web", "1/2 tasks running", 60, 120, 60.2)
    assert not late.ok
    assert late.output == "not converged after 60s: 1/2 tasks running"


def test_a_task_counts_once_it_has_run_for_the_monitor_window() -> None:
    """A task that exits a moment after it started was running when it was looked at: only
    the monitor window (Swarm's 5 s default here) tells it from one that keeps running."""
    service, tasks, since = _recorded("converged")
    started = max(parse_time(t["Status"]["Timestamp"]) for t in tasks)
    young = judge(service, tasks, since, started + timedelta(seconds=1))
    assert young.state == Convergence.PENDING
    assert young.message == "2 task(s) running for less than 5s"
    assert judge(service, tasks, since, started + timedelta(seconds=5)).state == (
        Convergence.CONVERGED
    )
    quick = {"Monitor": 1_000_000_000}
    spec = {**service["Spec"], "UpdateConfig": quick}
    later = started + timedelta(seconds=1.5)
    assert judge({**service, "Spec": spec}, tasks, since, later).state == Convergence.CONVERGED


def test_a_rollback_is_watched_for_the_rollbacks_monitor_window() -> None:
    """The spec a rollback puts back ran before the pass: its tasks count after the (shorter)
    rollback monitor window, so the revert is not held up by the update's."""
    service, tasks, since = _recorded("converged")
    started = max(parse_time(t["Status"]["Timestamp"]) for t in tasks)
    spec = {
        **service["Spec"],
        "UpdateConfig": {"Monitor": 20_000_000_000},
        "RollbackConfig": {"Monitor": 2_000_000_000},
    }
    later = started + timedelta(seconds=3)
    held = judge({**service, "Spec": spec}, tasks, since, later)
    assert held.message == "2 task(s) running for less than 20s"
    rolled_back = judge({**service, "Spec": spec}, tasks, since, later, rollback=True)
    assert rolled_back.state == Convergence.CONVERGED


def _not_pulled(err: str) -> tuple[dict[str, Any], list[dict[str, Any]], datetime]:
    """The recorded paused update, its failed tasks rejected with ``err`` (what Swarm says
    when it could not pull the image)."""
    service, tasks, since = _recorded("update-paused")
    failed = [t for t in tasks if t["Status"]["State"] in ("failed", "rejected")]
    assert failed
    for task in failed:
        task["Status"] = {**task["Status"], "State": "rejected", "Err": err}
    return service, tasks, since


def test_an_image_pinned_by_digest_that_could_not_be_pulled_is_the_registrys_fault() -> None:
    """The deploy resolved the digest from the registry, so the image existed: a task rejected
    with "No such image" for it means the registry did not serve it (not the revision's fault,
    the verify reports it as kind ``registry``)."""
    digest = "sha256:" + "e1" * 32
    service, tasks, since = _not_pulled(f"No such image: 127.0.0.1:5001/app:2@{digest}")
    progress = judge(service, tasks, since, _later(since))
    assert progress.state == Convergence.FAILED
    assert progress.registry
    assert "registry 127.0.0.1:5001 did not serve the image" in progress.message
    result = settled("api", progress, removed=False, attempts=1, elapsed=1.0)
    assert result is not None
    assert not result.ok
    assert result.kind == "registry"


def test_an_image_by_tag_only_that_does_not_exist_is_the_revisions_fault() -> None:
    service, tasks, since = _not_pulled("No such image: 127.0.0.1:5001/app:does-not-exist")
    progress = judge(service, tasks, since, _later(since))
    assert progress.state == Convergence.FAILED
    assert not progress.registry
    # unless pre-flight found it in its registry just before the deploy (which, with the
    # registry gone meanwhile, could not pin its digest)
    checked = judge(service, tasks, since, _later(since), image_checked=True)
    assert checked.registry
    result = settled("api", progress, removed=False, attempts=1, elapsed=1.0)
    assert result is not None
    assert result.kind == "swarm"
