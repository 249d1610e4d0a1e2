"""Recording a pass: conditions, history, quarantine, reverts, and which events go out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from reconciler.errors import Reason
from reconciler.events import EventKind
from reconciler.models import CheckResult, FieldDiff, PassResult, RevisionInfo
from reconciler.outcome import PassOutcome
from reconciler.record import events, record
from reconciler.status import ConditionType, ServiceStatus, Status

T0 = datetime(2025, 3, 1, tzinfo=UTC)
GOOD = RevisionInfo("a" * 40, "Bump api to 1")
BAD = RevisionInfo("b" * 40, "Bump api to 2")
FIX = RevisionInfo("c" * 40, 'Revert "Bump api to 2"')


def _report(result: PassResult, reason: Reason, rev: RevisionInfo, **kw: object) -> PassOutcome:
    kw.setdefault("desired", rev)
    if kw.pop("stalled", False):
        kw.setdefault("stalled_reason", reason)
    return PassOutcome(
        result,
        reason,
        f"{result.value} {rev.short}",
        revision=rev,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
        **kw,  # type: ignore[arg-type]
    )


def _step(status: Status, report: PassOutcome, minutes: int) -> tuple[Status, list[str]]:
    now = T0 + timedelta(minutes=minutes)
    after = record(status, report, now)
    after, found = events(status, after, report, now)
    return after, [e.kind.value for e in found]


def test_a_deploy_then_a_failed_one_then_its_revert() -> None:
    s = Status(stack="s", environment="e")
    inv = (
        ServiceStatus(name="api", image="api:1", live_image="api:1", healthy=True, in_sync=True),
    )
    s, ev = _step(
        s,
        _report(
            PassResult.SUCCESS,
            Reason.RECONCILIATION_SUCCEEDED,
            GOOD,
            applied=GOOD,
            applied_hash="h1",
            inventory=inv,
            changed=("api",),
        ),
        1,
    )
    assert ev == ["deploy_succeeded"]
    assert s.is_true(ConditionType.READY)
    assert s.is_true(ConditionType.HEALTHY)
    assert s.last_applied == GOOD
    assert s.last_success_at == T0 + timedelta(minutes=1)

    failed = CheckResult("api", ok=False, url="http://api/health", status_code=500, output="boom")
    s, ev = _step(
        s,
        _report(
            PassResult.ROLLED_BACK,
            Reason.HEALTH_CHECK_FAILED,
            BAD,
            changed=("api",),
            rolled_back=("api",),
            checks=(failed,),
            revert_commit=FIX.sha,
            desired_hash="h2",
            quarantine=True,
            reverted=(BAD.sha,),
        ),
        2,
    )
    assert ev == ["deploy_failed", "revert_pushed"]
    assert not s.is_true(ConditionType.READY)
    assert not s.is_true(ConditionType.STALLED)
    assert s.last_applied == GOOD  # a rollback does not change what is applied
    assert s.last_attempted == BAD
    assert s.is_quarantined(BAD.sha)
    assert s.is_quarantined("d" * 40, "h2")  # same rendered content, other commit
    assert s.revert_for(BAD.sha).commit == FIX.sha  # type: ignore[union-attr]

    s, ev = _step(
        s, _report(PassResult.NOOP, Reason.IN_SYNC, FIX, applied=FIX, applied_hash="h1"), 3
    )
    assert ev == ["recovered"]
    assert s.is_true(ConditionType.READY)
    s, ev = _step(s, _report(PassResult.NOOP, Reason.IN_SYNC, FIX, applied=FIX), 4)
    assert ev == []  # quiet
    assert [h.result for h in s.history] == [
        PassResult.NOOP,
        PassResult.ROLLED_BACK,
        PassResult.SUCCESS,
    ]
    assert s.history[0].count == 2  # identical no-op passes are merged


def test_a_refusal_is_announced_once_and_stalls() -> None:
    s = Status(stack="s", environment="e")
    report = _report(
        PassResult.REFUSED,
        Reason.VALIDATION_FAILED,
        BAD,
        stalled=True,
        problems=("images.yaml: 'x' is not a service",),
    )
    s, ev = _step(s, report, 1)
    assert ev == ["revision_refused"]
    assert s.is_true(ConditionType.STALLED)
    assert s.condition(ConditionType.READY).reason == "ValidationFailed"  # type: ignore[union-attr]
    s, ev = _step(s, report, 2)
    assert ev == []
    other = _report(PassResult.REFUSED, Reason.PREFLIGHT_FAILED, BAD, stalled=True)
    s, ev = _step(s, other, 3)
    assert ev == ["revision_refused"]


def test_quarantined_revisions_stay_quiet() -> None:
    s = Status(stack="s", environment="e")
    s, ev = _step(s, _report(PassResult.REFUSED, Reason.QUARANTINED, BAD, stalled=True), 1)
    assert ev == []


def test_drift_is_announced_when_it_changes() -> None:
    s = Status(stack="s", environment="e")
    drift = {"api": (FieldDiff("replicas", "2", "5"),)}
    report = _report(PassResult.NOOP, Reason.DRIFT_DETECTED, GOOD, drift=drift)
    s, ev = _step(s, report, 1)
    assert ev == ["drift_detected"]
    assert not s.is_true(ConditionType.READY)
    s, ev = _step(s, report, 2)
    assert ev == []
    s, ev = _step(
        s,
        _report(
            PassResult.SUCCESS,
            Reason.DRIFT_CORRECTED,
            GOOD,
            drift=drift,
            drift_corrected=True,
            applied=GOOD,
        ),
        3,
    )
    assert ev == []  # the same drift, now corrected: no second message
    s, ev = _step(s, _report(PassResult.NOOP, Reason.IN_SYNC, GOOD, applied=GOOD), 4)
    s, ev = _step(s, report, 5)
    assert ev == ["drift_detected"]  # it came back


def test_a_failed_rollback_stalls_and_says_so() -> None:
    s = Status(stack="s", environment="e")
    s, ev = _step(
        s,
        _report(
            PassResult.FAILED,
            Reason.HEALTH_CHECK_FAILED,
            BAD,
            stalled=True,
            stalled_reason=Reason.ROLLBACK_FAILED,
            quarantine=True,
            problems=("rollback did not converge",),
        ),
        1,
    )
    assert ev == ["deploy_failed", "stalled"]
    assert s.is_true(ConditionType.STALLED)
    stalled = s.condition(ConditionType.STALLED)
    assert stalled is not None
    assert stalled.reason == "RollbackFailed"  # why it needs a human, not why the deploy failed
    assert s.condition(ConditionType.READY).reason == "HealthCheckFailed"  # type: ignore[union-attr]


def test_transient_errors_do_not_notify() -> None:
    s = Status(stack="s", environment="e")
    report = _report(PassResult.ERROR, Reason.ARTIFACT_FAILED, GOOD, fetch_failed=True)
    s, ev = _step(s, report, 1)
    assert ev == []
    assert not s.is_true(ConditionType.READY)
    s, ev = _step(s, _report(PassResult.NOOP, Reason.IN_SYNC, GOOD, applied=GOOD), 2)
    assert ev == []  # nothing was announced, so no "recovered" either
    assert EventKind.RECOVERED.value not in ev


def test_changes_held_by_a_sync_window_are_announced_once_per_revision() -> None:
    s = Status(stack="s", environment="e")
    drift = {"api": (FieldDiff("replicas", "2", "5"),)}
    held = _report(PassResult.NOOP, Reason.OUTSIDE_SYNC_WINDOW, BAD, drift=drift)
    s, ev = _step(s, held, 1)
    assert ev == ["outside_sync_window"], "not a 'self-heal off' drift alert"
    assert not s.is_true(ConditionType.READY)
    assert not s.is_true(ConditionType.STALLED)
    s, ev = _step(s, held, 2)
    assert ev == []
    assert s.history[0].count == 2
    s, ev = _step(s, _report(PassResult.NOOP, Reason.OUTSIDE_SYNC_WINDOW, FIX), 3)
    assert ev == ["outside_sync_window"], "a new revision is held"
    applied = _report(
        PassResult.SUCCESS, Reason.RECONCILIATION_SUCCEEDED, FIX, applied=FIX, changed=("api",)
    )
    s, ev = _step(s, applied, 4)
    assert ev == ["deploy_succeeded"], "no 'recovered': holding was not a failure"
    s, ev = _step(s, _report(PassResult.NOOP, Reason.OUTSIDE_SYNC_WINDOW, FIX), 5)
    assert ev == ["outside_sync_window"], "held again after something was applied"


def test_sync_anyway_covers_one_revision_until_it_is_used() -> None:
    allowed = replace(Status(stack="s", environment="e"), sync_anyway=BAD.sha)
    kept = [
        _report(PassResult.ERROR, Reason.REGISTRY_UNAVAILABLE, BAD),  # tried again later
        _report(PassResult.NOOP, Reason.SUSPENDED, BAD),  # paused: not used yet
        _report(PassResult.ERROR, Reason.GIT_REMOTE_UNAVAILABLE, GOOD, desired=None),
    ]
    for report in kept:
        assert record(allowed, report, T0).sync_anyway == BAD.sha, report.reason
    spent = [
        _report(PassResult.SUCCESS, Reason.RECONCILIATION_SUCCEEDED, BAD, applied=BAD),
        _report(PassResult.ROLLED_BACK, Reason.HEALTH_CHECK_FAILED, BAD),
        _report(PassResult.NOOP, Reason.IN_SYNC, BAD, applied=BAD),
        _report(PassResult.NOOP, Reason.OUTSIDE_SYNC_WINDOW, FIX),  # the branch moved on
    ]
    for report in spent:
        assert record(allowed, report, T0).sync_anyway is None, report.reason
