"""The one value a pass returns: what it did, what it learnt, and what comes next.

``reconciler.record`` turns it into the next ``Status`` and the events worth announcing; the
metrics, the CLI's exit code and the daemon's next interval read it too
(``reconciler.decisions``). Frozen, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.errors import Reason
from reconciler.models import CheckResult, FieldDiff, PassResult, Plan, RevisionInfo
from reconciler.placement import Node
from reconciler.progress import RolloutStatus
from reconciler.status import ServiceStatus


@dataclass(frozen=True)
class PassOutcome:
    result: PassResult
    reason: Reason
    message: str  # masked
    trigger: str = "interval"  # interval | manual | startup | recovery | webhook ...
    revision: RevisionInfo | None = None  # the revision the pass worked on
    desired: RevisionInfo | None = None  # head of the branch at the fetch (None: fetch failed)
    applied: RevisionInfo | None = None  # what is live now, when the pass knows it
    applied_hash: str | None = None
    desired_hash: str | None = None
    plan: Plan | None = None
    inventory: tuple[ServiceStatus, ...] | None = None  # None: the pass could not read it
    nodes: tuple[Node, ...] | None = None  # the Swarm's nodes (None: not read)
    drift: Mapping[str, tuple[FieldDiff, ...]] = field(default_factory=dict)
    drift_corrected: bool = False
    changed: tuple[str, ...] = ()  # services created/updated/removed this pass
    checks: tuple[CheckResult, ...] = ()
    rolled_back: tuple[str, ...] = ()
    quarantine: bool = False  # the revision failed: never apply it again
    revert_commit: str | None = None  # pushed by this pass, or found pushed by an earlier one
    #: the pull (merge) request the revert waits in, when the branch takes no direct pushes
    revert_proposal: str | None = None
    reverted: tuple[str, ...] = ()  # the commits the revert pushed by this pass undoes
    problems: tuple[str, ...] = ()  # one line each, for a refusal or a stall
    detail: str = ""  # longer output (docker's stderr, the validation problems)
    retry_after: float | None = None  # transient: the next pass sooner than the interval
    #: set when the pass needs a human (refused, or the rollback or the revert failed); it is
    #: ``reason`` unless something after the failure failed too
    stalled_reason: Reason | None = None
    fetch_failed: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    apply_seconds: float | None = None
    verify_seconds: float | None = None
    rollout: RolloutStatus | None = None  # how the change rolled out, when it did

    @property
    def stalled(self) -> bool:
        return self.stalled_reason is not None

    @property
    def duration_seconds(self) -> float:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return 0.0

    @property
    def failed_checks(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.ok)
