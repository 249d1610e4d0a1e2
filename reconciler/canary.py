"""The canary step's decisions (pure): are the canary tasks running, what does each of them get
checked with, and what do a window's checks and analyses add up to.

A definitive failure ends the step at once — a new task that exited, Swarm pausing or undoing
the update, a running task that serves the wrong version, an analysis over its failure limit.
Anything else that is not a pass yet ("not ready") is measured again until the window ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

from reconciler.convergence import FAILED_UPDATE
from reconciler.faults import Component, task_fault
from reconciler.models import CheckResult, HealthCheck
from reconciler.task_views import ServiceTasks, TaskView


class Step(StrEnum):
    WAITING = "waiting"  # the canary tasks are not all running yet
    ANALYSING = "analysing"  # they run; checks and analyses are measured
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"  # no analysis could conclude: not the revision's fault


@dataclass(frozen=True)
class TasksVerdict:
    step: Step  # WAITING, ANALYSING (the canary runs) or FAILED
    message: str
    running: tuple[TaskView, ...] = ()  # the canary tasks that run
    #: FAILED because the registry did not serve the (existing) image: not the revision's fault
    registry: bool = False
    #: FAILED because the service was removed (by hand): not the revision's fault either
    gone: bool = False
    #: FAILED because the engine could not start a canary task, for its own trouble
    engine: bool = False


def canary_tasks(
    tasks: ServiceTasks, canary: int, since: datetime, *, image_checked: bool = False
) -> TasksVerdict:
    """Where the canary tasks stand. ``since``: when the change was deployed (failures from
    before it are not the new spec's)."""
    if not tasks.exists:
        return TasksVerdict(Step.FAILED, "the service does not exist", gone=True)
    for task in tasks.tasks:
        if task.current and task.failed and (task.since is None or task.since >= since):
            fault = task_fault(task.message, image_checked=image_checked)
            if fault.component is Component.REGISTRY:
                message = f"{fault.who} did not serve the image: {fault.evidence}"
                return TasksVerdict(Step.FAILED, message, registry=True)
            if fault.component is Component.ENGINE:
                message = f"the engine could not start a canary task: {fault.evidence}"
                return TasksVerdict(Step.FAILED, message, engine=True)
    started = tasks.update_started
    if tasks.update_state in FAILED_UPDATE and (started is None or started >= since):
        message = f"Swarm update {tasks.update_state}: {tasks.update_message}".strip()
        return TasksVerdict(Step.FAILED, message)
    exited = [
        t for t in tasks.tasks if t.current and t.failed and (t.since is None or t.since >= since)
    ]
    if exited:
        return TasksVerdict(Step.FAILED, f"a new task exited: {exited[0].message or 'failed'}")
    running = tuple(t for t in tasks.new if t.running)
    if len(running) < canary:
        waiting = next((t for t in tasks.new if not t.running), None)
        detail = f" (a task is {waiting.state}: {waiting.message})" if waiting else ""
        return TasksVerdict(
            Step.WAITING, f"{len(running)}/{canary} canary task(s) running{detail}".strip()
        )
    return TasksVerdict(Step.ANALYSING, f"{len(running)} canary task(s) running", running)


def per_task(check: HealthCheck, tasks: Sequence[TaskView]) -> list[HealthCheck]:
    """``check`` once per task, sent to the task's own address on the check's network, so no
    other task can answer for it. A check without a network (a published port) stays as is."""
    if check.network is None:
        return [check]
    out = []
    for task in tasks:
        address = task.addresses.get(check.network)
        if address is None:
            continue
        parts = urlsplit(check.url)
        netloc = address if parts.port is None else f"{address}:{parts.port}"
        url = urlunsplit(parts._replace(netloc=netloc))
        out.append(replace(check, name=f"{check.name} task {task.slot or task.id[:12]}", url=url))
    return out


@dataclass(frozen=True)
class TaskChecks:
    """Each canary task's latest check during the window."""

    latest: Mapping[str, CheckResult] = field(default_factory=dict)

    def add(self, results: Sequence[CheckResult]) -> TaskChecks:
        return TaskChecks({**self.latest, **{r.name: r for r in results}})

    @property
    def definitive(self) -> CheckResult | None:
        """A failure no retry can mend (a running task that serves the wrong version)."""
        return next((r for r in self.latest.values() if not r.ok and r.definitive), None)

    @property
    def failing(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.latest.values() if not r.ok)
