"""Typed events the agent emits, and the ``Notifier`` hook that receives them.

The agent calls every registered notifier with each event, on change or recovery only, never on
every pass (a refused revision is announced once, drift once per new drift, and so on). A notifier
that raises or times out is logged and counted (``reconciler_notifications_total{result="failed"}``)
but never breaks a pass.

Write a notifier (Slack, Discord, webhook) as any object with a ``name`` and an async ``notify``::

    class SlackNotifier:
        name = "slack"

        async def notify(self, event: Event) -> None:
            await post(url, {"text": event.summary()})

    agent = Agent(engine, notifiers=[SlackNotifier()])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, TypeAlias, runtime_checkable

from reconciler.errors import Reason
from reconciler.models import CheckResult, FieldDiff, RevisionInfo
from reconciler.serialize import to_jsonable


class EventKind(StrEnum):
    DEPLOY_SUCCEEDED = "deploy_succeeded"
    DEPLOY_FAILED = "deploy_failed"  # verify failed; changed services rolled back (or not)
    REVERT_PUSHED = "revert_pushed"
    REVISION_REFUSED = "revision_refused"  # invalid, missing image, missing secret ...
    STALLED = "stalled"  # needs a human (rollback failed, revert impossible)
    DRIFT_DETECTED = "drift_detected"
    RECOVERED = "recovered"  # Ready again after a failure, refusal or stall
    OUTSIDE_SYNC_WINDOW = "outside_sync_window"  # changes planned but held by a sync window


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class _EventBase:
    kind: ClassVar[EventKind]
    severity: ClassVar[Severity] = Severity.INFO
    stack: str
    environment: str
    at: datetime
    revision: RevisionInfo | None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = to_jsonable(self)
        data["kind"] = self.kind.value
        data["severity"] = self.severity.value
        data["summary"] = self.summary()
        return data

    def _where(self) -> str:
        rev = f" {self.revision.short}" if self.revision else ""
        subject = f" ({self.revision.subject})" if self.revision and self.revision.subject else ""
        return f"[{self.environment}/{self.stack}]{rev}{subject}"

    def summary(self) -> str:
        return f"{self._where()} {self.kind.value}"


@dataclass(frozen=True)
class DeploySucceeded(_EventBase):
    kind = EventKind.DEPLOY_SUCCEEDED
    services: tuple[str, ...] = ()
    duration_seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self._where()} deployed: {', '.join(self.services) or 'no service changes'} "
            f"in {self.duration_seconds:.0f}s"
        )


@dataclass(frozen=True)
class DeployFailed(_EventBase):
    kind = EventKind.DEPLOY_FAILED
    severity = Severity.CRITICAL
    reason: Reason
    message: str = ""
    failed_checks: tuple[CheckResult, ...] = ()
    rolled_back: tuple[str, ...] = ()
    rollback_ok: bool = True

    def summary(self) -> str:
        back = "rolled back" if self.rollback_ok else "ROLLBACK FAILED"
        return f"{self._where()} deploy failed ({self.reason}: {self.message}); {back}: " + (
            ", ".join(self.rolled_back) or "nothing to roll back"
        )


@dataclass(frozen=True)
class RevertPushed(_EventBase):
    kind = EventKind.REVERT_PUSHED
    severity = Severity.WARNING
    reason: Reason
    commit: str = ""
    reverted: tuple[str, ...] = ()
    message: str = ""
    #: the pull (merge) request the revert waits in (the branch takes no direct pushes)
    proposal: str = ""

    def summary(self) -> str:
        if self.proposal:
            return (
                f"{self._where()} revert {self.commit[:12]} proposed in {self.proposal}: "
                f"{self.reason}: {self.message}"
            )
        return (
            f"{self._where()} reverted in git by {self.commit[:12]}: {self.reason}: {self.message}"
        )


@dataclass(frozen=True)
class RevisionRefused(_EventBase):
    kind = EventKind.REVISION_REFUSED
    severity = Severity.WARNING
    reason: Reason
    message: str = ""
    problems: tuple[str, ...] = ()

    def summary(self) -> str:
        return f"{self._where()} refused ({self.reason}): {self.message}"


@dataclass(frozen=True)
class Stalled(_EventBase):
    kind = EventKind.STALLED
    severity = Severity.CRITICAL
    reason: Reason
    message: str = ""

    def summary(self) -> str:
        return f"{self._where()} STALLED ({self.reason}), needs a human: {self.message}"


@dataclass(frozen=True)
class DriftDetected(_EventBase):
    kind = EventKind.DRIFT_DETECTED
    severity = Severity.WARNING
    services: tuple[str, ...] = ()
    diffs: dict[str, tuple[FieldDiff, ...]] = field(default_factory=dict)
    corrected: bool = False

    def summary(self) -> str:
        what = "corrected" if self.corrected else "not corrected (self-heal off)"
        return f"{self._where()} drift on {', '.join(self.services)}: {what}"


@dataclass(frozen=True)
class Recovered(_EventBase):
    kind = EventKind.RECOVERED
    previous_reason: Reason
    message: str = ""

    def summary(self) -> str:
        return f"{self._where()} recovered (was {self.previous_reason}): {self.message}"


@dataclass(frozen=True)
class OutsideSyncWindow(_EventBase):
    """Changes are pending but not applied: a sync window is closed (once per revision)."""

    kind = EventKind.OUTSIDE_SYNC_WINDOW
    severity = Severity.WARNING
    message: str = ""
    services: tuple[str, ...] = ()  # the services the held changes would create/update/remove

    def summary(self) -> str:
        return f"{self._where()} not applied, outside the sync windows: {self.message}"


Event: TypeAlias = (
    DeploySucceeded
    | DeployFailed
    | RevertPushed
    | RevisionRefused
    | Stalled
    | DriftDetected
    | Recovered
    | OutsideSyncWindow
)


@runtime_checkable
class Notifier(Protocol):
    """Receives the agent's events. ``name`` is the ``channel`` label of
    ``reconciler_notifications_total``. ``notify`` should not take longer than a few seconds
    (the agent gives up after ``notify_timeout``).

    A notifier that only queues the event and delivers it later (with retries) sets the class
    attribute ``reports_delivery = True`` and reports each outcome itself with
    ``AgentControl.record_notification``; the agent then counts only a ``notify`` that raised."""

    name: str

    async def notify(self, event: Event) -> None: ...


class NullNotifier:
    """The default: drops every event."""

    name = "null"

    async def notify(self, event: Event) -> None:
        return None


class RecordingNotifier:
    """Keeps every event in memory (used by tests and handy for a status page's event feed)."""

    name = "memory"

    def __init__(self, limit: int = 200) -> None:
        self.events: list[Event] = []
        self._limit = limit

    async def notify(self, event: Event) -> None:
        self.events.append(event)
        del self.events[: -self._limit]
