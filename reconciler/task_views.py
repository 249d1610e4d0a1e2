"""A service's rolling update and its tasks, one by one, as the rollout reads them (pure): which
tasks run the service's current spec, in which state, at which address on each network.
Built from the Engine API's service and task objects (``GET /services/{id}``, ``GET /tasks``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.serialize import parse_time
from reconciler.types import JSONDict

#: task states that mean it failed (its container exited, or it could not start)
TASK_FAILED = frozenset({"failed", "rejected", "orphaned"})


def _canon(value: Any) -> Any:
    """A task's spec and its service's template, compared without Docker's fill-ins."""
    if isinstance(value, dict):
        out = {k: _canon(v) for k, v in value.items() if k not in ("Runtime",)}
        return {k: v for k, v in out.items() if v not in (None, {}, [], "", False)}
    if isinstance(value, list):
        return [_canon(v) for v in value]
    return value


def runs_current_spec(task: JSONDict, template: JSONDict) -> bool:
    return bool(_canon(task.get("Spec") or {}) == _canon(template))


@dataclass(frozen=True)
class TaskView:
    """One task of a service, as the rollout looks at it."""

    id: str
    slot: int | None
    current: bool  # runs the service's current spec
    desired: str  # the state Swarm wants (running, shutdown, ...)
    state: str  # the state it is in
    since: datetime | None  # when it entered that state
    message: str  # the task's error, or Swarm's message about it
    addresses: Mapping[str, str] = field(default_factory=dict)  # network name → IP address

    @property
    def running(self) -> bool:
        return self.desired == "running" and self.state == "running"

    @property
    def failed(self) -> bool:
        return self.state in TASK_FAILED


@dataclass(frozen=True)
class ServiceTasks:
    """A service's rolling update and its tasks, read at one moment."""

    exists: bool
    update_state: str | None = None
    update_message: str = ""
    update_started: datetime | None = None
    tasks: tuple[TaskView, ...] = ()

    @property
    def new(self) -> tuple[TaskView, ...]:
        """The tasks of the current spec that Swarm wants running."""
        return tuple(t for t in self.tasks if t.current and t.desired == "running")


def _addresses(task: JSONDict) -> dict[str, str]:
    out: dict[str, str] = {}
    for attachment in task.get("NetworksAttachments") or ():
        name = ((attachment.get("Network") or {}).get("Spec") or {}).get("Name")
        addresses = attachment.get("Addresses") or ()
        if name and addresses:
            out[str(name)] = str(addresses[0]).split("/")[0]
    return out


def _view(task: JSONDict, template: JSONDict) -> TaskView:
    status = task.get("Status") or {}
    stamp = status.get("Timestamp")
    return TaskView(
        id=str(task.get("ID", "")),
        slot=task.get("Slot"),
        current=runs_current_spec(task, template),
        desired=str(task.get("DesiredState") or ""),
        state=str(status.get("State") or ""),
        since=parse_time(stamp) if stamp else None,
        message=str(status.get("Err") or status.get("Message") or ""),
        addresses=_addresses(task),
    )


def service_tasks(service: JSONDict | None, tasks: Sequence[JSONDict]) -> ServiceTasks:
    """The service object and its tasks (Engine API) as the rollout reads them."""
    if service is None:
        return ServiceTasks(exists=False)
    update = service.get("UpdateStatus") or {}
    started = update.get("StartedAt")
    template = service["Spec"]["TaskTemplate"]
    return ServiceTasks(
        exists=True,
        update_state=update.get("State"),
        update_message=str(update.get("Message") or ""),
        update_started=parse_time(started) if started else None,
        tasks=tuple(_view(t, template) for t in tasks),
    )
