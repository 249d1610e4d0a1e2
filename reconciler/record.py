"""Record: turn a pass's outcome into the next ``Status`` and the events worth notifying (pure).

Conditions follow Flux: ``Ready`` (live equals the desired revision), ``Healthy`` (every service
runs and passed its checks), ``Stalled`` (needs a human), ``Reconciling`` (set by the agent while a
pass runs). Events go out on change or recovery only: a refused revision once, the same drift
once, changes held outside the sync windows once per revision, a recovery only after a problem
was announced (``Status.notified`` remembers).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TypedDict

from reconciler.errors import Reason
from reconciler.events import (
    DeployFailed,
    DeploySucceeded,
    DriftDetected,
    Event,
    OutsideSyncWindow,
    Recovered,
    RevertPushed,
    RevisionRefused,
    Stalled,
)
from reconciler.models import PassResult
from reconciler.outcome import PassOutcome
from reconciler.status import (
    HISTORY_SIZE,
    ConditionType,
    HistoryEntry,
    Notified,
    QuarantineEntry,
    RevertEntry,
    Status,
)

_FAILED = (PassResult.ROLLED_BACK, PassResult.FAILED)
#: the most of a raw error (``Condition.detail``) the status keeps
DETAIL_LIMIT = 4000
#: results whose repeats (same revision, same reason) merge into one history entry
_REPEATABLE = (PassResult.NOOP, PassResult.REFUSED, PassResult.ERROR)


class _Base(TypedDict):
    stack: str
    environment: str
    at: datetime


def _history(status: Status, out: PassOutcome, now: datetime, size: int) -> Status:
    entry = HistoryEntry(
        revision=out.revision,
        started_at=out.started_at or now,
        finished_at=out.finished_at or now,
        duration_seconds=round(out.duration_seconds, 3),
        result=out.result,
        reason=out.reason,
        message=out.message,
        services=out.changed,
        trigger=out.trigger,
    )
    last = status.history[0] if status.history else None
    if (
        last is not None
        and out.result in _REPEATABLE
        and (last.result, last.reason) == (out.result, out.reason)
        and (last.revision.sha if last.revision else None)
        == (out.revision.sha if out.revision else None)
    ):
        merged = replace(entry, started_at=last.started_at, count=last.count + 1)
        return replace(status, history=(merged, *status.history[1:]))
    return status.with_history(entry, size)


def clip(text: str, limit: int = DETAIL_LIMIT) -> str:
    """A raw error kept in the status: its head and its tail when it is long."""
    if len(text) <= limit:
        return text
    head, tail = limit // 4, limit - limit // 4
    return f"{text[:head]}\n[... {len(text) - limit} characters left out ...]\n{text[-tail:]}"


def _conditions(s: Status, out: PassOutcome, now: datetime) -> Status:
    """Ready and Stalled from the result (with the raw error behind it); Healthy from the
    inventory."""
    result, reason = out.result, out.reason
    ready = result == PassResult.SUCCESS or (result == PassResult.NOOP and reason == Reason.IN_SYNC)
    detail = "" if ready else clip(out.detail)
    s = s.with_condition(ConditionType.READY, ready, reason, out.message, now, detail)
    if result in (PassResult.SUCCESS, PassResult.NOOP):
        s = s.with_condition(ConditionType.STALLED, False, reason, "", now)
    elif result != PassResult.ERROR:  # refused, rolled back, failed
        stalled = out.stalled or result == PassResult.FAILED
        why = (out.stalled_reason or reason) if stalled else reason
        s = s.with_condition(
            ConditionType.STALLED,
            stalled,
            why,
            out.message if stalled else "",
            now,
            detail if stalled else "",
        )
    if out.inventory is not None:
        unhealthy = [i.name for i in out.inventory if i.healthy is False]
        s = s.with_condition(
            ConditionType.HEALTHY,
            not unhealthy,
            Reason.HEALTH_CHECK_FAILED if unhealthy else Reason.HEALTHY,
            f"unhealthy: {', '.join(unhealthy)}" if unhealthy else "every service is healthy",
            now,
        )
    return s


def _failure_memory(s: Status, out: PassOutcome, now: datetime) -> Status:
    """Quarantine a failed revision; remember the revert pushed for it."""
    rev = out.revision
    if rev is None:
        return s
    if out.quarantine:
        s = s.with_quarantine(QuarantineEntry(rev, out.desired_hash, out.reason, out.message, now))
    if out.revert_commit and not s.revert_for(rev.sha):
        reverted = out.reverted or (rev.sha,)
        entry = RevertEntry(
            rev,
            reverted,
            out.revert_commit,
            out.reason,
            out.message,
            now,
            out.revert_proposal or "",
        )
        s = s.with_revert(entry)
    return s


def _spent(s: Status, out: PassOutcome) -> Status:
    """Forget the "sync anyway" of a revision once it has been used (applied, found in sync, or
    failed and rolled back) or the branch moved past it: it covers that one revision only."""
    allowed = s.sync_anyway
    if allowed is None:
        return s
    moved_on = out.desired is not None and out.desired.sha != allowed
    tried = out.revision is not None and out.revision.sha == allowed
    used = out.result in (PassResult.SUCCESS, *_FAILED) or out.reason == Reason.IN_SYNC
    return replace(s, sync_anyway=None) if moved_on or (tried and used) else s


def record(
    status: Status, out: PassOutcome, now: datetime, history_size: int = HISTORY_SIZE
) -> Status:
    s = replace(
        status,
        phase=None,
        progress="",
        last_pass_at=now,
        last_result=out.result,
        last_reason=out.reason,
        last_message=out.message,
    )
    if out.desired is not None:
        s = replace(s, desired=out.desired)
    if out.inventory is not None:
        s = replace(s, inventory=out.inventory)
    if out.nodes is not None:
        s = replace(s, nodes=out.nodes)
    if out.rollout is not None:
        s = replace(s, rollout=out.rollout)
    s = s.with_condition(ConditionType.RECONCILING, False, out.reason, "", now)
    if out.revision is not None:
        s = replace(s, last_attempted=out.revision)
    if out.result in (PassResult.SUCCESS, PassResult.NOOP) and out.applied is not None:
        s = replace(
            s, last_applied=out.applied, last_applied_hash=out.applied_hash, last_success_at=now
        )
    s = _conditions(s, out, now)
    s = _failure_memory(s, out, now)
    s = _spent(s, out)
    return _history(s, out, now, history_size)


# ------------------------------------------------------------------ events


def _drift(base: _Base, out: PassOutcome, notified: Notified) -> tuple[Notified, list[Event]]:
    if out.reason == Reason.OUTSIDE_SYNC_WINDOW:
        return notified, []  # announced as held (with the services); corrected when it opens
    key = ";".join(
        f"{svc}:{','.join(str(d) for d in diffs)}" for svc, diffs in sorted(out.drift.items())
    )
    found: list[Event] = []
    if key and key != notified.drift:
        found.append(
            DriftDetected(
                **base,
                revision=out.revision,
                services=tuple(sorted(out.drift)),
                diffs=dict(out.drift),
                corrected=out.drift_corrected,
            )
        )
    if key:
        return replace(notified, drift=key), found
    if out.result in (PassResult.NOOP, PassResult.SUCCESS):
        return replace(notified, drift=None), found
    return notified, found


def _failure(base: _Base, out: PassOutcome) -> list[Event]:
    rev = out.revision
    found: list[Event] = [
        DeployFailed(
            **base,
            revision=rev,
            reason=out.reason,
            message=out.message,
            failed_checks=out.failed_checks,
            rolled_back=out.rolled_back,
            rollback_ok=out.result == PassResult.ROLLED_BACK,
        )
    ]
    if out.revert_commit and out.reverted:
        found.append(
            RevertPushed(
                **base,
                revision=rev,
                commit=out.revert_commit,
                reverted=out.reverted,
                reason=out.reason,
                message=out.message,
                proposal=out.revert_proposal or "",
            )
        )
    return found


def _refusal(base: _Base, out: PassOutcome, notified: Notified) -> tuple[Notified, list[Event]]:
    key = f"{out.revision.sha if out.revision else ''}:{out.reason}"
    if out.reason in (Reason.QUARANTINED, Reason.REVERT_PROPOSED) or notified.refusal == key:
        return notified, []
    event = RevisionRefused(
        **base, revision=out.revision, reason=out.reason, message=out.message, problems=out.problems
    )
    return replace(notified, refusal=key, problem=out.reason), [event]


def _held(base: _Base, out: PassOutcome, notified: Notified) -> tuple[Notified, list[Event]]:
    """Changes held outside the sync windows: announced once per revision, and again only after
    something was applied (or found in sync) in between."""
    if out.reason != Reason.OUTSIDE_SYNC_WINDOW:
        if out.result == PassResult.SUCCESS or out.reason == Reason.IN_SYNC:
            return replace(notified, held=None), []
        return notified, []
    key = out.revision.sha if out.revision else ""
    if notified.held == key:
        return notified, []
    services = tuple(c.service for c in out.plan.to_apply) if out.plan else ()
    event = OutsideSyncWindow(**base, revision=out.revision, message=out.message, services=services)
    return replace(notified, held=key), [event]


def _outcome_events(
    base: _Base, out: PassOutcome, notified: Notified
) -> tuple[Notified, list[Event]]:
    if out.result == PassResult.SUCCESS and out.reason == Reason.RECONCILIATION_SUCCEEDED:
        succeeded = DeploySucceeded(
            **base,
            revision=out.revision,
            services=out.changed,
            duration_seconds=out.duration_seconds,
        )
        return notified, [succeeded]
    if out.result in _FAILED:
        return replace(notified, problem=out.reason), _failure(base, out)
    if out.result == PassResult.REFUSED:
        return _refusal(base, out, notified)
    return notified, []


def _stall_and_recovery(
    base: _Base, before: Status, after: Status, out: PassOutcome, notified: Notified
) -> tuple[Notified, list[Event]]:
    found: list[Event] = []
    stalled = after.condition(ConditionType.STALLED)
    newly_stalled = after.is_true(ConditionType.STALLED) and not before.is_true(
        ConditionType.STALLED
    )
    if newly_stalled and out.result in _FAILED and stalled is not None:
        found.append(
            Stalled(
                **base,
                revision=out.revision,
                reason=stalled.reason,
                message=" ".join(out.problems) or out.message,
            )
        )
    if after.is_true(ConditionType.READY) and not before.is_true(ConditionType.READY):
        if notified.problem is not None:
            found.append(
                Recovered(
                    **base,
                    revision=out.revision,
                    previous_reason=notified.problem,
                    message=out.message,
                )
            )
        notified = replace(notified, problem=None, refusal=None)
    return notified, found


def events(
    before: Status, after: Status, out: PassOutcome, now: datetime
) -> tuple[Status, list[Event]]:
    """The events this pass deserves, and ``after`` with the notification memory updated."""
    base = _Base(stack=after.stack, environment=after.environment, at=now)
    notified, found = _drift(base, out, after.notified)
    notified, more = _outcome_events(base, out, notified)
    found += more
    notified, more = _held(base, out, notified)
    found += more
    notified, more = _stall_and_recovery(base, before, after, out, notified)
    return replace(after, notified=notified), found + more
