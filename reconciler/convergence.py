"""Has Swarm finished rolling out a service? Pure decisions over the service and task objects the
Docker Engine API returns (``GET /services/{id}``, ``GET /tasks?filters=service``), so they are
tested from JSON recorded on a real Swarm (``tests/fixtures/swarm/``).

A service has converged when Swarm's own update is not running or failed, every task it wants
runs the service's current spec and has been running (which means healthy when it has a
healthcheck) for the service's update ``monitor`` window, and the tasks of the previous spec have
stopped: until then one could still answer the health checks in place of the new spec. A task
that exits a moment after it started is not running for long: the window is what tells a task
that runs from one that crashes (Swarm watches its own updates for the same window).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from reconciler.faults import Component, task_fault
from reconciler.models import CheckResult
from reconciler.serialize import parse_time
from reconciler.task_views import TASK_FAILED, runs_current_spec
from reconciler.types import JSONDict

#: Swarm update states that mean the update failed (or Swarm is undoing it)
FAILED_UPDATE = frozenset({"paused", "rollback_started", "rollback_paused", "rollback_completed"})
#: task states in which its container may be running (and answering)
TASK_ALIVE = frozenset({"assigned", "accepted", "preparing", "starting", "running"})
#: tasks of the new spec that failed since the apply before the verify gives up early
FAILED_TASKS_LIMIT = 3
#: Swarm's timestamps and ours may disagree by this much
_SKEW = 2.0
#: how Swarm names the task whose end paused its update
_EARLY = re.compile(r"early termination of task (\w+)")
#: Swarm's default update monitor window (``docker service update --update-monitor``)
DEFAULT_MONITOR = 5.0


class Convergence(StrEnum):
    CONVERGED = "converged"
    PENDING = "pending"
    FAILED = "failed"
    GONE = "gone"


@dataclass(frozen=True)
class Progress:
    state: Convergence
    message: str
    #: a failure that is not the revision's: the registry did not serve its (existing) image
    registry: bool = False
    #: Swarm paused the update for a reason that is not the revision's: resume it and wait on
    resume: bool = False
    #: that reason is the engine's trouble (it could not start a task): if the wait then runs
    #: out, the engine is to blame, not the revision
    engine: bool = False

    @property
    def settled(self) -> bool:
        """Nothing more to wait for (converged, failed or gone)."""
        return self.state is not Convergence.PENDING


def _state(task: JSONDict) -> str:
    return str((task.get("Status") or {}).get("State") or "")


def _after(timestamp: str | None, since: datetime) -> bool:
    return timestamp is None or parse_time(timestamp).timestamp() >= since.timestamp() - _SKEW


def _failed_update(
    service: JSONDict, tasks: Sequence[JSONDict], since: datetime
) -> Progress | None:
    update = service.get("UpdateStatus") or {}
    state = update.get("State")
    if state in FAILED_UPDATE and _after(update.get("StartedAt"), since):
        message = f"Swarm update {state}: {update.get('Message', '')}".strip()
        return Progress(Convergence.FAILED, message + _named_task(update, tasks))
    return None


def _early_task(update: JSONDict, tasks: Sequence[JSONDict]) -> JSONDict | None:
    """The task whose "early termination" Swarm names in its update's message, if listed."""
    found = _EARLY.search(str(update.get("Message") or ""))
    return next((t for t in tasks if found and t.get("ID") == found.group(1)), None)


def _named_task(update: JSONDict, tasks: Sequence[JSONDict]) -> str:
    """What became of the task Swarm names in its update's message, as it says."""
    task = _early_task(update, tasks)
    if task is None:
        return ""
    status = task.get("Status") or {}
    why = status.get("Err") or status.get("Message") or ""
    return f" (that task: {_state(task)}, desired {task.get('DesiredState')}: {why})"


def _engine_failed(task: JSONDict) -> bool:
    """The task failed because the engine could not start it, for trouble of its own."""
    err = str((task.get("Status") or {}).get("Err") or "")
    return _state(task) in TASK_FAILED and task_fault(err).component is Component.ENGINE


def _interrupted(service: JSONDict, tasks: Sequence[JSONDict]) -> Progress | None:
    """Swarm paused its update (or rollback) for "early termination" of a task that was not the
    revision's doing, and the update is to be resumed: a task Swarm stopped itself (its node
    drained or left: the task shut down, wanted shut down, no error), or one the engine could not
    start for trouble of its own (an overlay address still held on the node)."""
    update = service.get("UpdateStatus") or {}
    if update.get("State") not in ("paused", "rollback_paused"):
        return None
    task = _early_task(update, tasks)
    if task is None:
        return None
    status = task.get("Status") or {}
    short = str(task["ID"])[:12]
    if _engine_failed(task):
        return Progress(
            Convergence.PENDING,
            f"Swarm paused the update when the engine could not start task {short} "
            f"({status.get('Err')}), not for the revision: resuming it",
            resume=True,
            engine=True,
        )
    if task.get("DesiredState") != "shutdown" or _state(task) != "shutdown" or status.get("Err"):
        return None
    return Progress(
        Convergence.PENDING,
        f"Swarm paused the update when it stopped task {short} itself (its node "
        "drained or gone), not for failing: resuming it",
        resume=True,
    )


def _not_pulled(
    current: Sequence[JSONDict], since: datetime, image_checked: bool
) -> Progress | None:
    """A task of the new spec rejected because the registry did not serve its image."""
    for task in current:
        status = task.get("Status") or {}
        if _state(task) in TASK_FAILED and _after(status.get("Timestamp"), since):
            fault = task_fault(str(status.get("Err") or ""), image_checked=image_checked)
            if fault.component is Component.REGISTRY:
                message = f"{fault.who} did not serve the image: {fault.evidence}"
                return Progress(Convergence.FAILED, message, registry=True)
    return None


def _failed_tasks(current: Sequence[JSONDict], since: datetime) -> Progress | None:
    failures = [
        t
        for t in current
        if _state(t) in TASK_FAILED
        and _after(t["Status"].get("Timestamp"), since)
        and not _engine_failed(t)
    ]
    if len(failures) < FAILED_TASKS_LIMIT:
        return None
    status = failures[0]["Status"]
    err = status.get("Err") or status.get("Message", "")
    return Progress(Convergence.FAILED, f"{len(failures)} tasks of the new spec failed: {err}")


def _job(mode: JSONDict, current: Sequence[JSONDict]) -> Progress:
    done = [t for t in current if _state(t) == "complete"]
    total = (mode.get("ReplicatedJob") or {}).get("TotalCompletions")
    if total is None or len(done) >= int(total):
        return Progress(Convergence.CONVERGED, f"job complete ({len(done)} tasks)")
    return Progress(Convergence.PENDING, f"job: {len(done)}/{total} tasks complete")


def _previous_spec(old: Sequence[JSONDict]) -> Progress | None:
    stale = [t for t in old if t.get("DesiredState") == "running"]
    if stale:
        return Progress(Convergence.PENDING, f"{len(stale)} task(s) still run the previous spec")
    # a replaced task may still be running while it stops: until it has, it can answer the
    # health checks (and keep its DNS name) in place of the new spec
    stopping = [t for t in old if t.get("DesiredState") != "running" and _state(t) in TASK_ALIVE]
    if stopping:
        return Progress(
            Convergence.PENDING, f"{len(stopping)} task(s) of the previous spec still stopping"
        )
    return None


def monitor_window(spec: JSONDict, *, rollback: bool = False) -> float:
    """How long a new task must run before it counts: the service's update monitor window (its
    rollback's, when the spec being rolled out is the one that ran before the pass)."""
    config = spec.get("RollbackConfig" if rollback else "UpdateConfig") or {}
    nanos = config.get("Monitor")
    return int(nanos) / 1e9 if nanos else DEFAULT_MONITOR


def _young(running: Sequence[JSONDict], now: datetime, window: float) -> Progress | None:
    young = [
        t
        for t in running
        if now.timestamp() - parse_time(t["Status"]["Timestamp"]).timestamp() < window
    ]
    if not young:
        return None
    return Progress(
        Convergence.PENDING, f"{len(young)} task(s) running for less than {window:.0f}s"
    )


def _replicas(
    spec: JSONDict,
    tasks: Sequence[JSONDict],
    current: Sequence[JSONDict],
    now: datetime,
    rollback: bool,
) -> Progress:
    mode = spec.get("Mode") or {}
    active = [t for t in tasks if t.get("DesiredState") == "running"]
    running = [t for t in current if t.get("DesiredState") == "running" and _state(t) == "running"]
    want = (mode.get("Replicated") or {}).get("Replicas")
    want_n = len(active) if want is None else int(want)
    if len(running) < want_n or (want is None and not running and active):
        last = next((t for t in active if _state(t) != "running"), None)
        detail = ""
        if last is not None:
            st = last["Status"]
            detail = f" (a task is {st['State']}: {st.get('Err') or st.get('Message', '')})"
        return Progress(Convergence.PENDING, f"{len(running)}/{want_n} tasks running{detail}")
    young = _young(running, now, monitor_window(spec, rollback=rollback))
    if young is not None:
        return young
    return Progress(Convergence.CONVERGED, f"{len(running)}/{want_n} tasks running the new spec")


def judge(
    service: JSONDict | None,
    tasks: Sequence[JSONDict],
    since: datetime,
    now: datetime,
    *,
    rollback: bool = False,
    image_checked: bool = False,
) -> Progress:
    """Where the rollout of ``service`` stands, from the service object and all its tasks.
    ``since``: when the pass deployed (earlier failures are not the new spec's); ``now``: the
    time the objects were read; ``rollback``: the spec is the one that ran before (a rollback),
    watched for the rollback's monitor window; ``image_checked``: pre-flight found the images
    in their registry before the deploy (an image that could not be pulled is the registry's
    fault even when the deploy could not pin its digest)."""
    if service is None:
        return Progress(Convergence.GONE, "service does not exist")
    spec = service["Spec"]
    current = [t for t in tasks if runs_current_spec(t, spec["TaskTemplate"])]
    old = [t for t in tasks if not runs_current_spec(t, spec["TaskTemplate"])]
    interrupted = _interrupted(service, tasks)
    if interrupted is not None:
        return interrupted
    failed = _not_pulled(current, since, image_checked) or _failed_update(service, tasks, since)
    if failed is not None:
        return failed
    failed = _failed_tasks(current, since)
    if failed is not None:
        return failed
    mode = spec.get("Mode") or {}
    if "ReplicatedJob" in mode or "GlobalJob" in mode:
        return _job(mode, current)
    if (service.get("UpdateStatus") or {}).get("State") == "updating":
        return Progress(Convergence.PENDING, "Swarm rolling update in progress")
    return _previous_spec(old) or _replicas(spec, tasks, current, now, rollback)


def settled(
    name: str, progress: Progress, *, removed: bool, attempts: int, elapsed: float
) -> CheckResult | None:
    """The verify's result for one service once there is nothing more to wait for, else None.
    A ``removed`` service (pruned by the pass) is waited for until it is gone."""
    if removed:
        if progress.state is Convergence.GONE:
            return CheckResult(name=name, ok=True, kind="swarm", output="removed")
        return None
    if not progress.settled:
        return None
    kind = "swarm"
    if progress.registry:
        kind = "registry"
    elif progress.state is Convergence.GONE:
        kind = "gone"  # removed while the pass verified it (by hand): not the revision's fault
    return CheckResult(
        name=name,
        ok=progress.state is Convergence.CONVERGED,
        kind=kind,
        output=progress.message,
        attempts=attempts,
        elapsed_seconds=elapsed,
    )


def timed_out(
    name: str, last: str, limit: float, attempts: int, elapsed: float, *, engine: bool = False
) -> CheckResult:
    """The verify's result for a service still pending at its time limit. ``engine``: the wait
    met the engine's own trouble (a task it could not start): the result's kind says so."""
    return CheckResult(
        name=name,
        ok=False,
        kind="engine" if engine else "swarm",
        output=f"not converged after {limit:.0f}s: {last or 'pending'}",
        attempts=attempts,
        elapsed_seconds=elapsed,
    )
