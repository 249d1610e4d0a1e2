"""Record: turn a pass report into the next ``Status`` and the events worth notifying (pure).

Conditions follow Flux: ``Ready`` (live equals the desired revision), ``Healthy`` (every service
runs and passed its checks), ``Stalled`` (needs a human), ``Reconciling`` (set by the agent while a
pass runs). Events go out on change or recovery only: a refused revision once, the same drift
once, a recovery only after a problem was announced.
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
    Recovered,
    RevertPushed,
    RevisionRefused,
    Stalled,
)
from reconciler.models import PassResult, RevisionInfo
from reconciler.pipeline import PassReport
from reconciler.status import (
    HISTORY_SIZE,
    ConditionType,
    HistoryEntry,
    QuarantineEntry,
    RevertEntry,
    Status,
)


class _Base(TypedDict):
    stack: str
    environment: str
    at: datetime


_PROBLEM = "notified_problem"
_REFUSAL = "notified_refusal"
_DRIFT = "notified_drift"


def _history(status: Status, report: PassReport, now: datetime, size: int) -> Status:
    out = report.outcome
    entry = HistoryEntry(
        revision=out.revision,
        started_at=out.started_at or now,
        finished_at=out.finished_at or now,
        duration_seconds=round(out.duration_seconds, 3),
        result=out.result,
        reason=out.reason.value,
        message=out.message,
        services=out.changed,
        trigger=report.trigger,
    )
    last = status.history[0] if status.history else None
    if (
        last is not None
        and out.result in (PassResult.NOOP, PassResult.REFUSED, PassResult.ERROR)
        and last.result == out.result
        and last.reason == entry.reason
        and (last.revision.sha if last.revision else None)
        == (out.revision.sha if out.revision else None)
    ):
        merged = replace(entry, started_at=last.started_at, count=last.count + 1)
        return replace(status, history=(merged, *status.history[1:]))
    return status.with_history(entry, size)


def record(
    status: Status, report: PassReport, now: datetime, history_size: int = HISTORY_SIZE
) -> Status:
    out = report.outcome
    s = replace(
        status,
        phase=None,
        progress="",
        last_pass_at=now,
        last_result=out.result,
        last_reason=out.reason.value,
        last_message=out.message,
    )
    if report.desired is not None:
        s = replace(s, desired=report.desired)
    if report.inventory is not None:
        s = replace(s, inventory=report.inventory)
    s = s.with_condition(ConditionType.RECONCILING, False, out.reason.value, "", now)
    result = out.result
    if out.revision is not None:
        s = replace(s, last_attempted=out.revision)

    if result in (PassResult.SUCCESS, PassResult.NOOP) and report.applied is not None:
        s = replace(
            s,
            last_applied=report.applied,
            last_applied_hash=report.applied_hash,
            last_success_at=now,
        )
    if result == PassResult.SUCCESS or (result == PassResult.NOOP and out.reason == Reason.IN_SYNC):
        s = s.with_condition(ConditionType.READY, True, out.reason.value, out.message, now)
        s = s.with_condition(ConditionType.STALLED, False, out.reason.value, "", now)
    elif result == PassResult.NOOP:
        s = s.with_condition(ConditionType.READY, False, out.reason.value, out.message, now)
        s = s.with_condition(ConditionType.STALLED, False, out.reason.value, "", now)
    elif result == PassResult.ERROR:
        s = s.with_condition(ConditionType.READY, False, out.reason.value, out.message, now)
    else:  # refused, rolled back, failed
        s = s.with_condition(ConditionType.READY, False, out.reason.value, out.message, now)
        stalled = out.stalled or result == PassResult.FAILED
        why = (out.stalled_reason or out.reason).value if stalled else out.reason.value
        s = s.with_condition(
            ConditionType.STALLED, stalled, why, out.message if stalled else "", now
        )

    if report.inventory is not None:
        unhealthy = [i.name for i in report.inventory if i.healthy is False]
        s = s.with_condition(
            ConditionType.HEALTHY,
            not unhealthy,
            Reason.HEALTH_CHECK_FAILED.value if unhealthy else Reason.HEALTHY.value,
            f"unhealthy: {', '.join(unhealthy)}" if unhealthy else "every service is healthy",
            now,
        )

    if report.quarantine and out.revision is not None:
        s = s.with_quarantine(
            QuarantineEntry(out.revision, out.desired_hash, out.reason.value, out.message, now)
        )
    if out.revert_commit and out.revision is not None and not s.revert_for(out.revision.sha):
        s = s.with_revert(
            RevertEntry(
                out.revision,
                report.reverted or (out.revision.sha,),
                out.revert_commit,
                out.reason.value,
                out.message,
                now,
            )
        )
    return _history(s, report, now, history_size)


def events(
    before: Status, after: Status, report: PassReport, now: datetime
) -> tuple[Status, list[Event]]:
    """The events this pass deserves, and ``after`` with the notification memory updated."""
    out = report.outcome
    base = _Base(stack=after.stack, environment=after.environment, at=now)
    rev: RevisionInfo | None = out.revision
    found: list[Event] = []
    extra = dict(after.extra)
    result = out.result

    drift_key = ";".join(
        f"{svc}:{','.join(str(d) for d in diffs)}" for svc, diffs in sorted(report.drift.items())
    )
    if drift_key and drift_key != extra.get(_DRIFT):
        found.append(
            DriftDetected(
                **base,
                revision=rev,
                services=tuple(sorted(report.drift)),
                diffs=dict(report.drift),
                corrected=report.drift_corrected,
            )
        )
    if not drift_key and result in (PassResult.NOOP, PassResult.SUCCESS):
        extra.pop(_DRIFT, None)
    elif drift_key:
        extra[_DRIFT] = drift_key

    if result == PassResult.SUCCESS and out.reason == Reason.RECONCILIATION_SUCCEEDED:
        found.append(
            DeploySucceeded(
                **base, revision=rev, services=out.changed, duration_seconds=out.duration_seconds
            )
        )
    elif result in (PassResult.ROLLED_BACK, PassResult.FAILED):
        found.append(
            DeployFailed(
                **base,
                revision=rev,
                reason=out.reason.value,
                message=out.message,
                failed_checks=out.failed_checks,
                rolled_back=out.rolled_back,
                rollback_ok=result == PassResult.ROLLED_BACK,
            )
        )
        extra[_PROBLEM] = out.reason.value
        if out.revert_commit and report.reverted:
            found.append(
                RevertPushed(
                    **base,
                    revision=rev,
                    commit=out.revert_commit,
                    reverted=report.reverted,
                    reason=out.reason.value,
                    message=out.message,
                )
            )
    elif result == PassResult.REFUSED and out.reason != Reason.QUARANTINED:
        key = f"{rev.sha if rev else ''}:{out.reason.value}"
        if extra.get(_REFUSAL) != key:
            found.append(
                RevisionRefused(
                    **base,
                    revision=rev,
                    reason=out.reason.value,
                    message=out.message,
                    problems=report.problems,
                )
            )
            extra[_REFUSAL] = key
            extra[_PROBLEM] = out.reason.value

    was_stalled = before.is_true(ConditionType.STALLED)
    now_stalled = after.is_true(ConditionType.STALLED)
    stalled_cond = after.condition(ConditionType.STALLED)
    if now_stalled and not was_stalled and result in (PassResult.ROLLED_BACK, PassResult.FAILED):
        found.append(
            Stalled(
                **base,
                revision=rev,
                reason=stalled_cond.reason if stalled_cond else "",
                message=" ".join(report.problems) or out.message,
            )
        )

    if after.is_true(ConditionType.READY) and not before.is_true(ConditionType.READY):
        previous = extra.pop(_PROBLEM, None)
        extra.pop(_REFUSAL, None)
        if previous:
            found.append(
                Recovered(**base, revision=rev, previous_reason=previous, message=out.message)
            )
    return replace(after, extra=extra), found
