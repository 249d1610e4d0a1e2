"""After an engine restart Swarm can leave a task it told to stop running, holding the host-mode
port the task replacing it waits for. The agent stops such a container once Swarm had GRACE to do
it itself, and nothing else (seen in the fault suite: an engine restart during a rollback)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.port_holders import GRACE, stale_port_holders
from reconciler.types import JSONDict

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
PENDING = "no suitable node (host-mode port already in use on 1 node)"


def task(desired: str, state: str, *, told: float = 60, err: str = "", cid: str = "") -> JSONDict:
    updated = (NOW - timedelta(seconds=told)).isoformat().replace("+00:00", "Z")
    status: JSONDict = {"State": state, "Err": err}
    if cid:
        status["ContainerStatus"] = {"ContainerID": cid}
    return {"DesiredState": desired, "UpdatedAt": updated, "Status": status}


def test_a_container_swarm_told_to_stop_is_stopped_when_it_holds_the_port() -> None:
    tasks = [
        task("running", "pending", err=PENDING),
        task("shutdown", "running", cid="c" * 64),
        task("shutdown", "shutdown", cid="d" * 64),  # stopped already
    ]
    assert stale_port_holders(tasks, NOW) == ["c" * 64]


def test_swarm_gets_its_grace_first() -> None:
    tasks = [task("running", "pending", err=PENDING), task("shutdown", "running", told=3, cid="c")]
    assert stale_port_holders(tasks, NOW) == []
    later = NOW + timedelta(seconds=GRACE)
    assert stale_port_holders(tasks, later) == ["c"]


def test_nothing_is_stopped_unless_a_task_waits_for_its_port() -> None:
    holder = task("shutdown", "running", cid="c")
    assert stale_port_holders([holder, task("running", "running", cid="e")], NOW) == []
    other = task("running", "pending", err="no suitable node (insufficient resources on 1 node)")
    assert stale_port_holders([holder, other], NOW) == []
    # a task meant to run is never stopped, whatever else waits
    assert stale_port_holders([task("running", "pending", err=PENDING),
                               task("running", "running", cid="e")], NOW) == []  # fmt: skip
