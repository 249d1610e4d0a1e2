"""The status object: conditions, rings, quarantine and its JSON round trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from reconciler.errors import Reason
from reconciler.models import CheckResult, FieldDiff, PassResult, Phase, RevisionInfo
from reconciler.status import (
    HISTORY_SIZE,
    ConditionType,
    HistoryEntry,
    QuarantineEntry,
    RevertEntry,
    ServiceStatus,
    Status,
)

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
REV = RevisionInfo(sha="a" * 40, subject="Bump api to 1.2.3", author="Ann <ann@x>", committed_at=T0)


def _entry(i: int) -> HistoryEntry:
    return HistoryEntry(
        revision=REV,
        started_at=T0 + timedelta(seconds=i),
        finished_at=T0 + timedelta(seconds=i + 1),
        duration_seconds=1.0,
        result=PassResult.NOOP,
        reason=Reason.IN_SYNC,
    )


def test_condition_transition_time_changes_only_when_status_changes() -> None:
    s = Status(stack="s", environment="e")
    s = s.with_condition(ConditionType.READY, False, "ValidationFailed", "bad", T0)
    later = T0 + timedelta(minutes=1)
    s2 = s.with_condition(ConditionType.READY, False, "PreflightFailed", "missing image", later)
    ready = s2.condition(ConditionType.READY)
    assert ready is not None
    assert ready.last_transition == T0
    assert ready.reason == "PreflightFailed"
    s3 = s2.with_condition(ConditionType.READY, True, "ReconciliationSucceeded", "", later)
    assert s3.condition(ConditionType.READY).last_transition == later  # type: ignore[union-attr]
    assert s3.is_true(ConditionType.READY)
    assert len(s3.conditions) == 1


def test_conditions_keep_a_stable_order() -> None:
    s = Status(stack="s", environment="e")
    for t in (ConditionType.STALLED, ConditionType.READY, ConditionType.HEALTHY):
        s = s.with_condition(t, False, Reason.HEALTHY, "", T0)
    assert [c.type for c in s.conditions] == [
        ConditionType.READY,
        ConditionType.HEALTHY,
        ConditionType.STALLED,
    ]


def test_history_is_a_ring_newest_first() -> None:
    s = Status(stack="s", environment="e")
    for i in range(HISTORY_SIZE + 5):
        s = s.with_history(_entry(i))
    assert len(s.history) == HISTORY_SIZE
    assert s.history[0].started_at == T0 + timedelta(seconds=HISTORY_SIZE + 4)


def test_quarantine_matches_revision_or_rendered_content() -> None:
    q = QuarantineEntry(REV, "hash1", "HealthCheckFailed", "api: 500", T0)
    s = Status(stack="s", environment="e").with_quarantine(q).with_quarantine(q)
    assert len(s.quarantine) == 1
    assert s.is_quarantined(REV.sha)
    assert s.is_quarantined("b" * 40, "hash1")
    assert not s.is_quarantined("b" * 40, "hash2")
    assert not s.without_quarantine(REV.sha).quarantine


def test_json_round_trip_keeps_everything() -> None:
    s = Status(
        stack="driftless",
        environment="production",
        phase=Phase.VERIFY,
        desired=REV,
        last_applied=REV,
        inventory=(
            ServiceStatus(
                name="api",
                image="r/api:2",
                live_image="r/api:1",
                replicas_desired=2,
                replicas_running=1,
                drift=(FieldDiff("replicas", "2", "1"),),
                last_check=CheckResult(name="api", ok=False, status_code=500, output="boom"),
            ),
        ),
        reverts=(RevertEntry(REV, (REV.sha,), "c" * 40, "HealthCheckFailed", "api: 500", T0),),
        last_result=PassResult.ROLLED_BACK,
    ).with_condition(ConditionType.STALLED, None, Reason.PROGRESSING, "", T0)
    data = json.loads(json.dumps(s.to_dict()))
    assert data["desired"]["committed_at"] == "2025-01-02T03:04:05Z"
    assert data["inventory"][0]["drift"] == [{"field": "replicas", "desired": "2", "live": "1"}]
    assert Status.from_dict(data) == s


def test_from_dict_ignores_unknown_keys_and_fills_defaults() -> None:
    s = Status.from_dict({"stack": "s", "environment": "e", "future_field": 1})
    assert s.history == ()
    assert s.revert_for("x") is None


def test_a_status_file_of_the_earlier_format_loads_with_its_notification_memory() -> None:
    """Before the notification memory was typed it was an ``extra`` dict; an agent upgraded in
    place must still know what it announced (or it would announce a recovery twice, or not)."""
    old = Status(stack="s", environment="e").to_dict()
    old.pop("notified")
    old["last_reason"] = ""
    old["extra"] = {"notified_problem": "HealthCheckFailed", "notified_refusal": "ab:Quarantined"}
    status = Status.from_dict(old)
    assert status.notified.problem == Reason.HEALTH_CHECK_FAILED
    assert status.notified.refusal == "ab:Quarantined"
    assert status.notified.drift is None
    assert status.last_reason is None
    assert "extra" not in status.to_dict()
