"""Events: JSON form and one-line summaries that chat notifications use."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from reconciler.errors import Reason
from reconciler.events import (
    DeployFailed,
    DriftDetected,
    Event,
    Notifier,
    NullNotifier,
    RecordingNotifier,
    RevertPushed,
)
from reconciler.models import CheckResult, FieldDiff, RevisionInfo

T0 = datetime(2025, 1, 2, tzinfo=UTC)
REV = RevisionInfo(sha="ab" * 20, subject="Bump api to 9", author="Bob", committed_at=T0)


def test_deploy_failed_carries_the_failed_check() -> None:
    ev = DeployFailed(
        stack="driftless",
        environment="production",
        at=T0,
        revision=REV,
        reason="HealthCheckFailed",
        message="api: HTTP 500",
        failed_checks=(CheckResult(name="api", ok=False, status_code=500, output="db down"),),
        rolled_back=("api", "worker"),
    )
    data = json.loads(json.dumps(ev.to_dict()))
    assert data["kind"] == "deploy_failed"
    assert data["severity"] == "critical"
    assert data["failed_checks"][0]["output"] == "db down"
    assert data["revision"]["sha"] == REV.sha
    assert "abababababab" in ev.summary()
    assert "rolled back: api, worker" in ev.summary()


def test_summaries_name_what_happened() -> None:
    rp = RevertPushed(
        stack="s", environment="e", at=T0, revision=REV, commit="f" * 40, reason="R", message="m"
    )
    assert "reverted in git by ffffffffffff" in rp.summary()
    drift = DriftDetected(
        stack="s",
        environment="e",
        at=T0,
        revision=None,
        services=("api",),
        diffs={"api": (FieldDiff("replicas", "2", "5"),)},
    )
    assert "not corrected" in drift.summary()
    assert drift.to_dict()["diffs"]["api"][0]["live"] == "5"


async def test_notifiers_satisfy_the_protocol() -> None:
    rec = RecordingNotifier(limit=2)
    for n in (NullNotifier(), rec):
        assert isinstance(n, Notifier)
    events: list[Event] = [
        RevertPushed(
            stack="s",
            environment="e",
            at=T0,
            revision=None,
            reason=Reason.HEALTH_CHECK_FAILED,
            commit=str(i),
        )
        for i in range(3)
    ]
    for ev in events:
        await rec.notify(ev)
    assert [e.commit for e in rec.events] == ["1", "2"]  # type: ignore[union-attr]
