"""``GET /healthz``: is the agent's loop alive? (A pure judgement of the status; no I/O.)

The loop is *stuck* when

* a pass has been running longer than ``stuck_after`` (the ``Reconciling`` condition's last
  transition is when it started), or
* no pass runs and the next one is overdue by more than ``late_after`` (the scheduler's
  ``next_pass_at``), or
* nothing has run at all ``stuck_after`` after the server started.

A stalled *deployment* (the ``Stalled`` condition) is not a stuck *agent*: the loop still runs,
so ``/healthz`` stays 200 and says so; the status page and alerts report the stall.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reconciler.status import ConditionType, Status


@dataclass(frozen=True)
class Liveness:
    ok: bool
    state: str  # ok | starting | stuck
    detail: str


def judge(
    status: Status,
    now: datetime,
    *,
    started_at: datetime,
    stuck_after: float,
    late_after: float,
) -> Liveness:
    if status.phase is not None:
        cond = status.condition(ConditionType.RECONCILING)
        since = cond.last_transition if cond and cond.status and cond.last_transition else None
        # a status loaded from disk may carry an old transition: count from our own start
        since = max(since, started_at) if since else started_at
        running = (now - since).total_seconds()
        what = f"phase {status.phase.value}" + (f" ({status.progress})" if status.progress else "")
        if running > stuck_after:
            return Liveness(False, "stuck", f"a pass has been running for {running:.0f}s, {what}")
        return Liveness(True, "ok", f"pass running for {running:.0f}s, {what}")

    if status.next_pass_at is not None and (status.last_pass_at or status.history):
        due = max(status.next_pass_at, started_at)
        late = (now - due).total_seconds()
        if late > late_after:
            return Liveness(False, "stuck", f"the next pass is {late:.0f}s overdue")
        return Liveness(True, "ok", "idle, next pass scheduled")

    up = (now - started_at).total_seconds()
    if status.last_pass_at is None or status.last_pass_at < started_at:
        if up > stuck_after:
            return Liveness(False, "stuck", f"no pass has run in the {up:.0f}s since start")
        return Liveness(True, "starting", "waiting for the first pass")
    return Liveness(True, "ok", "idle")
