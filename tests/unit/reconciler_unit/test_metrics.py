"""The reconciler_* metrics after a deploy, a failed deploy with its rollback and revert, a
failed fetch and a quiet pass, recorded the way the agent records a pass (record → status →
gauges; outcome → counters and histograms)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from reconciler.errors import Reason
from reconciler.metrics import Metrics
from reconciler.models import CheckResult, PassResult, RevisionInfo
from reconciler.outcome import PassOutcome
from reconciler.record import record
from reconciler.status import ServiceStatus, Status

T0 = datetime(2025, 3, 1, tzinfo=UTC)
GOOD = RevisionInfo("a" * 40, "Bump api to 1")
BAD = RevisionInfo("b" * 40, "Bump api to 2")
FIX = RevisionInfo("c" * 40, 'Revert "Bump api to 2"')
BASE = {"stack": "shop", "environment": "production"}


class Recorder:
    """What the agent does with a pass report: status, then metrics."""

    def __init__(self) -> None:
        self.status = Status(stack="shop", environment="production")
        self.metrics = Metrics("shop", "production")
        self.minute = 0

    def pass_(self, result: PassResult, reason: Reason, rev: RevisionInfo, **kw: object) -> None:
        self.minute += 1
        start = T0 + timedelta(minutes=self.minute)
        kw.setdefault("desired", rev)
        if kw.pop("stalled", False):
            kw.setdefault("stalled_reason", reason)
        outcome = PassOutcome(
            result,
            reason,
            result.value,
            revision=rev,
            started_at=start,
            finished_at=start + timedelta(seconds=12),
            **kw,  # type: ignore[arg-type]
        )
        self.status = record(self.status, outcome, start + timedelta(seconds=12))
        if outcome.fetch_failed:
            self.metrics.fetch_error()
        self.metrics.observe(outcome)
        self.metrics.update(self.status)

    def value(self, name: str, **labels: str) -> float | None:
        text = self.metrics.exposition().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels == {**BASE, **labels}:
                    return float(sample.value)
        return None


def _inventory(image: str, *, healthy: bool = True, running: int = 2) -> tuple[ServiceStatus, ...]:
    return (
        ServiceStatus(
            name="api",
            image=image,
            live_image=image,
            in_sync=True,
            healthy=healthy,
            replicas_desired=2,
            replicas_running=running,
        ),
        ServiceStatus(
            name="web",
            image="web:1",
            live_image="web:0",
            in_sync=False,
            healthy=False,
            replicas_desired=1,
            replicas_running=0,
        ),
    )


def test_every_metric_follows_deploy_failure_revert_and_recovery() -> None:
    r = Recorder()
    # every series exists before anything happened, so rate() and absent() work from the start
    assert r.value("reconciler_passes_total", result="rolled_back") == 0.0
    assert r.value("reconciler_rollbacks_total") == 0.0
    assert r.value("reconciler_git_fetch_errors_total") == 0.0

    r.pass_(
        PassResult.SUCCESS,
        Reason.RECONCILIATION_SUCCEEDED,
        GOOD,
        applied=GOOD,
        applied_hash="h1",
        inventory=_inventory("api:1"),
        changed=("api",),
        apply_seconds=1.5,
        verify_seconds=8.0,
    )
    assert r.value("reconciler_passes_total", result="success") == 1.0
    assert r.value("reconciler_pass_duration_seconds_sum") == 12.0
    assert r.value("reconciler_apply_duration_seconds_sum") == 1.5
    assert r.value("reconciler_verify_duration_seconds_count") == 1.0
    end = (T0 + timedelta(minutes=1, seconds=12)).timestamp()
    assert r.value("reconciler_last_pass_timestamp_seconds") == end
    assert r.value("reconciler_last_success_timestamp_seconds") == end
    assert r.value("reconciler_desired_revision_info", revision=GOOD.sha) == 1.0
    assert r.value("reconciler_applied_revision_info", revision=GOOD.sha) == 1.0
    assert r.value("reconciler_services_out_of_sync") == 1.0
    assert r.value("reconciler_service_in_sync", service="api") == 1.0
    assert r.value("reconciler_service_in_sync", service="web") == 0.0
    assert r.value("reconciler_service_healthy", service="api") == 1.0
    assert r.value("reconciler_service_healthy", service="web") == 0.0
    assert r.value("reconciler_service_replicas_desired", service="api") == 2.0
    assert r.value("reconciler_service_replicas_running", service="web") == 0.0
    assert r.value("reconciler_condition", type="Ready") == 1.0

    failed = CheckResult("api", ok=False, url="http://api/health", status_code=500, output="boom")
    r.pass_(
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
        inventory=_inventory("api:1"),
        apply_seconds=1.0,
        verify_seconds=60.0,
    )
    assert r.value("reconciler_passes_total", result="rolled_back") == 1.0
    assert r.value("reconciler_rollbacks_total") == 1.0
    assert r.value("reconciler_reverts_pushed_total") == 1.0
    assert r.value("reconciler_quarantined_revisions") == 1.0
    assert r.value("reconciler_desired_revision_info", revision=BAD.sha) == 1.0
    assert r.value("reconciler_desired_revision_info", revision=GOOD.sha) is None  # one series
    assert r.value("reconciler_applied_revision_info", revision=GOOD.sha) == 1.0
    assert r.value("reconciler_last_success_timestamp_seconds") == end  # not a success
    assert r.value("reconciler_condition", type="Ready") == 0.0

    r.pass_(PassResult.ERROR, Reason.ARTIFACT_FAILED, GOOD, fetch_failed=True, desired=None)
    assert r.value("reconciler_git_fetch_errors_total") == 1.0
    assert r.value("reconciler_passes_total", result="error") == 1.0

    r.pass_(PassResult.NOOP, Reason.IN_SYNC, FIX, applied=FIX, inventory=_inventory("api:1"))
    assert r.value("reconciler_applied_revision_info", revision=FIX.sha) == 1.0
    assert r.value("reconciler_applied_revision_info", revision=GOOD.sha) is None
    assert r.value("reconciler_rollbacks_total") == 1.0  # a quiet pass changes no counter
    assert r.value("reconciler_reverts_pushed_total") == 1.0
    assert r.value("reconciler_quarantined_revisions") == 1.0
    assert r.value("reconciler_condition", type="Ready") == 1.0


def test_a_failed_rollback_is_not_counted_as_a_rollback() -> None:
    r = Recorder()
    r.pass_(
        PassResult.FAILED,
        Reason.HEALTH_CHECK_FAILED,
        BAD,
        changed=("api",),
        stalled=True,
        quarantine=True,
    )
    assert r.value("reconciler_passes_total", result="failed") == 1.0
    assert r.value("reconciler_rollbacks_total") == 0.0
    assert r.value("reconciler_condition", type="Stalled") == 1.0
