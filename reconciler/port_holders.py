"""Tasks Swarm has told to stop that still hold a host-mode port (pure).

After an engine restart Swarm can start a task's container again although the task's desired
state is already ``shutdown`` (seen with a rollback under way when the engine came back). The
container holds the service's host-mode port, so the task meant to replace it stays pending
("host-mode port already in use") until Swarm gets round to stopping it, which can take minutes.
That is an engine race, not the revision's fault: the agent finishes Swarm's own shutdown of such
a container (:mod:`reconciler.adapters.port_holders`) once Swarm has had ``GRACE`` to do it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from reconciler.serialize import parse_time
from reconciler.types import JSONDict

#: how long Swarm has to stop such a container itself before the agent does
GRACE = 15.0
PORT_IN_USE = "host-mode port already in use"


def _blocked(task: JSONDict) -> bool:
    status = task.get("Status") or {}
    return (
        task.get("DesiredState") == "running"
        and status.get("State") == "pending"
        and PORT_IN_USE in str(status.get("Err") or "")
    )


def _stale(task: JSONDict, now: datetime) -> str | None:
    """The container of a task told to stop that still runs, once GRACE passed."""
    status = task.get("Status") or {}
    container = (status.get("ContainerStatus") or {}).get("ContainerID")
    told = task.get("UpdatedAt")
    if task.get("DesiredState") not in ("shutdown", "remove") or status.get("State") != "running":
        return None
    if not container or not told or now.timestamp() - parse_time(told).timestamp() < GRACE:
        return None
    return str(container)


def stale_port_holders(tasks: Sequence[JSONDict], now: datetime) -> list[str]:
    """Containers to stop: of tasks of one service told to stop more than GRACE ago that still
    run, while a task of the same service waits for a host-mode port. None otherwise."""
    if not any(_blocked(t) for t in tasks):
        return []
    return sorted(c for t in tasks if (c := _stale(t, now)) is not None)
