"""The agent's status: one object that the CLI, the metrics, the status page and the JSON API read.

``Status`` is a frozen dataclass; the agent replaces it after every phase and persists it in the
state directory (``status.json``), so a restart knows the last applied revision, the quarantined
revisions and the reverts already pushed. ``Status.to_dict()`` is the JSON form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from reconciler.errors import Reason
from reconciler.models import CheckResult, FieldDiff, PassResult, Phase, RevisionInfo
from reconciler.placement import Node
from reconciler.progress import RolloutStatus
from reconciler.serialize import from_jsonable, to_jsonable

HISTORY_SIZE = 50
REVERTS_KEPT = 50
QUARANTINE_KEPT = 200


class ConditionType(StrEnum):
    READY = "Ready"  # live equals the desired revision and it is healthy
    RECONCILING = "Reconciling"  # a pass is running
    HEALTHY = "Healthy"  # every service runs all its replicas and passed its checks
    STALLED = "Stalled"  # needs a human: retried only when the input changes


@dataclass(frozen=True)
class Condition:
    type: ConditionType
    status: bool | None  # None = unknown
    reason: Reason
    message: str = ""
    last_transition: datetime | None = None
    #: the raw error behind ``reason`` (docker's or git's own words, masked), when there was one
    detail: str = ""


@dataclass(frozen=True)
class ServiceStatus:
    """One line of the inventory: a service the agent manages."""

    name: str
    image: str | None  # desired image (live image if the service is no longer in git)
    live_image: str | None
    mode: str = "replicated"
    replicas_desired: int = 0
    replicas_running: int = 0
    in_sync: bool = False
    healthy: bool | None = None
    revision: str | None = None  # ``driftless.revision`` label: revision that last changed it
    spec_hash: str | None = None
    action: str = "unchanged"  # what the last plan wanted: create/update/remove/unchanged/orphan
    drift: tuple[FieldDiff, ...] = ()
    last_check: CheckResult | None = None
    #: the digest the service runs (Swarm pins ``name:tag@digest``)
    live_digest: str | None = None
    #: its tag was pushed again in the registry since it was deployed: what, and that it is not
    #: rolled out
    tag_moved: str = ""


@dataclass(frozen=True)
class HistoryEntry:
    revision: RevisionInfo | None
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    result: PassResult
    reason: Reason
    message: str = ""
    services: tuple[str, ...] = ()  # services changed by this pass
    trigger: str = "interval"  # interval | manual | startup | recovery | drift | webhook ...
    count: int = 1  # consecutive passes with the same revision, result and reason


@dataclass(frozen=True)
class QuarantineEntry:
    """A revision that failed to deploy. It is never applied again (nor any revision whose
    rendered desired state is the same, ``desired_hash``)."""

    revision: RevisionInfo
    desired_hash: str | None
    reason: Reason
    message: str
    quarantined_at: datetime


@dataclass(frozen=True)
class RevertEntry:
    """A revert commit the agent pushed for a failed revision (or proposed: pushed to a branch
    of its own, with a pull or merge request, because the branch takes no direct pushes)."""

    revision: RevisionInfo  # the failed revision
    reverted: tuple[str, ...]  # every commit the revert undoes (newest first)
    commit: str  # the revert commit
    reason: Reason
    message: str
    pushed_at: datetime
    #: the web address of the pull (merge) request the revert waits in; "" when pushed
    proposal: str = ""


@dataclass(frozen=True)
class Notified:
    """What the agent last announced, so that it announces changes and recoveries only."""

    #: a failure or refusal was announced: the next Ready is announced as a recovery from it
    problem: Reason | None = None
    #: ``<sha>:<reason>`` of the refusal last announced (the same refusal is announced once)
    refusal: str | None = None
    #: the drift last announced (``service:diffs;...``), announced again only when it changes
    drift: str | None = None
    #: the revision whose changes were last announced as held outside the sync windows
    held: str | None = None


@dataclass(frozen=True)
class PromotionRecord:
    """The last revision this environment proposed to the next one, and where."""

    revision: RevisionInfo
    url: str
    at: datetime
    images: Mapping[str, str] = field(default_factory=dict)  # service → reference proposed
    branch: str = ""  # the branch pushed (url is empty when no request was opened for it)


@dataclass(frozen=True)
class AgentStanding:
    """Which agent acts (``state.store: swarm``): the one that holds the lease. Each agent shows
    its own: holding it, or waiting and why."""

    holding: bool
    holder: str  # the agent that holds the lease ("" when nobody does)
    node: str  # the node it runs on
    term: int
    me: str = ""  # this agent
    my_node: str = ""  # the node this agent runs on
    why: str = ""  # waiting: who holds it, or why the lease cannot be read


@dataclass(frozen=True)
class Status:
    stack: str
    environment: str
    phase: Phase | None = None  # the phase running now, None when idle
    progress: str = ""  # progress message of the running phase
    paused: bool = False  # applying suspended (passes still fetch, plan and report)
    paused_reason: str = ""
    #: the one revision (full sha) allowed to be applied outside the sync windows ("sync
    #: anyway"); forgotten once it is applied or failed, or the branch moved past it
    sync_anyway: str | None = None
    desired: RevisionInfo | None = None  # head of the branch at the last fetch
    last_attempted: RevisionInfo | None = None
    last_applied: RevisionInfo | None = None
    last_applied_hash: str | None = None  # desired_hash of the last applied revision
    conditions: tuple[Condition, ...] = ()
    inventory: tuple[ServiceStatus, ...] = ()
    history: tuple[HistoryEntry, ...] = ()  # newest first, at most HISTORY_SIZE
    quarantine: tuple[QuarantineEntry, ...] = ()
    reverts: tuple[RevertEntry, ...] = ()  # newest first
    last_pass_at: datetime | None = None
    last_success_at: datetime | None = None
    next_pass_at: datetime | None = None
    last_result: PassResult | None = None
    last_reason: Reason | None = None
    last_message: str = ""
    notified: Notified = field(default_factory=Notified)
    #: the rollout running now, or the last pass's (which wave, the canaries, why it stopped)
    rollout: RolloutStatus | None = None
    #: the last revision proposed to the next environment (``promote.path``), and where
    promotion: PromotionRecord | None = None
    #: the lease, when several agents can run (``state.store: swarm``); None with one agent
    lease: AgentStanding | None = None
    #: the Swarm's nodes as the last pass read them (role, state, availability, labels)
    nodes: tuple[Node, ...] = ()

    # -------------------------------------------------------------- reading

    def condition(self, type_: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    def is_true(self, type_: ConditionType) -> bool:
        cond = self.condition(type_)
        return bool(cond and cond.status)

    def is_quarantined(self, sha: str, desired_hash: str | None = None) -> QuarantineEntry | None:
        for entry in self.quarantine:
            if entry.revision.sha == sha:
                return entry
            if desired_hash and entry.desired_hash == desired_hash:
                return entry
        return None

    def revert_for(self, sha: str) -> RevertEntry | None:
        return next((r for r in self.reverts if r.revision.sha == sha or sha in r.reverted), None)

    @property
    def out_of_sync(self) -> tuple[ServiceStatus, ...]:
        return tuple(s for s in self.inventory if not s.in_sync)

    # -------------------------------------------------------------- writing (return new objects)

    def with_condition(
        self,
        type_: ConditionType,
        status: bool | None,
        reason: Reason,
        message: str,
        now: datetime,
        detail: str = "",
    ) -> Status:
        old = self.condition(type_)
        changed = old is None or old.status != status
        cond = Condition(
            type=type_,
            status=status,
            reason=reason,
            message=message,
            last_transition=now if changed or old is None else old.last_transition,
            detail=detail,
        )
        others = tuple(c for c in self.conditions if c.type != type_)
        order = list(ConditionType)
        conditions = tuple(sorted((*others, cond), key=lambda c: order.index(c.type)))
        return replace(self, conditions=conditions)

    def with_history(self, entry: HistoryEntry, size: int = HISTORY_SIZE) -> Status:
        return replace(self, history=(entry, *self.history)[:size])

    def with_quarantine(self, entry: QuarantineEntry) -> Status:
        if self.is_quarantined(entry.revision.sha):
            return self
        return replace(self, quarantine=(entry, *self.quarantine)[:QUARANTINE_KEPT])

    def without_quarantine(self, sha: str) -> Status:
        kept = tuple(q for q in self.quarantine if q.revision.sha != sha and sha != "all")
        return replace(self, quarantine=kept)

    def with_revert(self, entry: RevertEntry) -> Status:
        return replace(self, reverts=(entry, *self.reverts)[:REVERTS_KEPT])

    # -------------------------------------------------------------- JSON

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = to_jsonable(self)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Status:
        return from_jsonable(cls, _upgrade(data))


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A status file written by an earlier version: the notification memory was an untyped
    ``extra`` dict, and an empty ``last_reason`` was ``""``."""
    data = dict(data)
    extra = data.pop("extra", None)
    if isinstance(extra, dict) and "notified" not in data:
        data["notified"] = {
            "problem": extra.get("notified_problem") or None,
            "refusal": extra.get("notified_refusal") or None,
            "drift": extra.get("notified_drift") or None,
        }
    if not data.get("last_reason"):
        data["last_reason"] = None
    return data
