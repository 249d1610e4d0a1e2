"""The ``reconciler_*`` Prometheus metrics (names in docs/interfaces.md), in a registry of their
own. Gauges are set from the one ``Status`` object; counters and histograms from pass outcomes.
Every metric carries the ``stack`` and ``environment`` labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from reconciler.models import PassResult
from reconciler.outcome import PassOutcome
from reconciler.progress import RolloutStatus
from reconciler.status import ConditionType, Status
from reconciler.windows import SyncWindow, is_open

_BASE_LABELS = ("stack", "environment")
_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200)


class Metrics:
    def __init__(self, stack: str, environment: str) -> None:
        self.registry = CollectorRegistry()
        self._base = {"stack": stack, "environment": environment}
        self.passes = self._counter(
            "reconciler_passes_total", "Reconciliation passes by result", "result"
        )
        self.pass_duration = self._histogram(
            "reconciler_pass_duration_seconds", "Duration of a whole pass"
        )
        self.apply_duration = self._histogram(
            "reconciler_apply_duration_seconds", "Duration of docker stack deploy"
        )
        self.verify_duration = self._histogram(
            "reconciler_verify_duration_seconds", "Duration of the verify phase"
        )
        self.last_pass = self._gauge(
            "reconciler_last_pass_timestamp_seconds", "End of the last pass"
        )
        self.last_success = self._gauge(
            "reconciler_last_success_timestamp_seconds",
            "End of the last pass that left live equal to git",
        )
        self.desired_revision = self._gauge(
            "reconciler_desired_revision_info", "Head of the branch at the last fetch", "revision"
        )
        self.applied_revision = self._gauge(
            "reconciler_applied_revision_info", "Revision live on the Swarm", "revision"
        )
        self.out_of_sync = self._gauge(
            "reconciler_services_out_of_sync", "Services whose live spec differs from git"
        )
        self._service_gauges()
        self.rollbacks = self._counter("reconciler_rollbacks_total", "Whole-stack rollbacks")
        self.reverts = self._counter("reconciler_reverts_pushed_total", "Revert commits pushed")
        self.fetch_errors = self._counter("reconciler_git_fetch_errors_total", "Failed git fetches")
        self.quarantined = self._gauge(
            "reconciler_quarantined_revisions", "Revisions never applied again"
        )
        self.condition = self._gauge("reconciler_condition", "Status conditions (1 = true)", "type")
        self.lease_held = self._gauge(
            "reconciler_lease_held", "1: this agent holds the lease and acts; 0: it waits"
        )
        self.lease_term = self._gauge(
            "reconciler_lease_term", "The lease's term (one more per takeover)"
        )
        self.notifications = self._counter(
            "reconciler_notifications_total",
            "Notifications by channel and result",
            "channel",
            "result",
        )
        self._rollout_gauges()
        self.window_open = self._gauge(
            "reconciler_sync_window_open", "1 while the sync windows allow applying changes"
        )
        self._start_at_zero()

    def watch_windows(self, windows: Sequence[SyncWindow], now: Callable[[], datetime]) -> None:
        """``reconciler_sync_window_open`` is judged when it is scraped, at ``now()``."""
        kept = tuple(windows)

        def judged() -> float:
            return 1.0 if not kept or is_open(kept, now()) else 0.0

        self.window_open.labels(**self._base).set_function(judged)

    def _service_gauges(self) -> None:
        """One series per service of the inventory."""
        self.service_in_sync = self._gauge(
            "reconciler_service_in_sync", "1 when the service equals git", "service"
        )
        self.service_healthy = self._gauge(
            "reconciler_service_healthy",
            "1 when the service runs all replicas and passed its check",
            "service",
        )
        self.replicas_desired = self._gauge(
            "reconciler_service_replicas_desired", "Replicas git asks for", "service"
        )
        self.replicas_running = self._gauge(
            "reconciler_service_replicas_running", "Tasks running", "service"
        )

    def _rollout_gauges(self) -> None:
        """The rollout running now, or the last one: its wave, each canary's step and analyses."""
        self.rollout_wave = self._gauge(
            "reconciler_rollout_wave", "The wave the rollout is in (1-based; 0: none yet)"
        )
        self.rollout_waves = self._gauge("reconciler_rollout_waves", "The rollout's waves")
        self.canary_step = self._gauge(
            "reconciler_canary_step", "1 for the step each canary is in", "service", "step"
        )
        self.analysis_value = self._gauge(
            "reconciler_analysis_value",
            "The last measurement of each canary analysis (absent: it had none)",
            "service",
            "analysis",
        )
        self.analysis_measurements = self._gauge(
            "reconciler_analysis_measurements",
            "Measurements of each canary analysis in the rollout, by outcome",
            "service",
            "analysis",
            "outcome",
        )

    def _update_rollout(self, rollout: RolloutStatus | None) -> None:
        b = self._base
        self.rollout_wave.labels(**b).set(rollout.wave if rollout else 0)
        self.rollout_waves.labels(**b).set(rollout.waves if rollout else 0)
        for gauge in (self.canary_step, self.analysis_value, self.analysis_measurements):
            gauge.clear()
        for canary in rollout.canaries if rollout else ():
            self.canary_step.labels(**b, service=canary.service, step=canary.step).set(1)
            for a in canary.analyses:
                labels = {**b, "service": canary.service, "analysis": a.name}
                if a.value is not None:
                    self.analysis_value.labels(**labels).set(a.value)
                for outcome, count in (
                    ("successful", a.successful),
                    ("failed", a.failed),
                    ("inconclusive", a.inconclusive),
                ):
                    self.analysis_measurements.labels(**labels, outcome=outcome).set(count)

    def _start_at_zero(self) -> None:
        """Every counter series exists, at 0, from the start (before the first pass or error)."""
        for result in PassResult:
            self.passes.labels(**self._base, result=result.value)
        for metric in (self.rollbacks, self.reverts, self.fetch_errors):
            metric.labels(**self._base)
        self.watch_windows((), lambda: datetime.min)  # no windows: always open

    # every family carries the stack and environment labels

    def _counter(self, name: str, doc: str, *labels: str) -> Counter:
        return Counter(name, doc, [*_BASE_LABELS, *labels], registry=self.registry)

    def _gauge(self, name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(name, doc, [*_BASE_LABELS, *labels], registry=self.registry)

    def _histogram(self, name: str, doc: str) -> Histogram:
        return Histogram(
            name,
            doc,
            _BASE_LABELS,
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )

    def observe(self, outcome: PassOutcome) -> None:
        self.passes.labels(**self._base, result=outcome.result.value).inc()
        self.pass_duration.labels(**self._base).observe(outcome.duration_seconds)
        if outcome.apply_seconds is not None:
            self.apply_duration.labels(**self._base).observe(outcome.apply_seconds)
        if outcome.verify_seconds is not None:
            self.verify_duration.labels(**self._base).observe(outcome.verify_seconds)
        if outcome.rolled_back:
            self.rollbacks.labels(**self._base).inc()
        if outcome.revert_commit:
            self.reverts.labels(**self._base).inc()

    def fetch_error(self) -> None:
        self.fetch_errors.labels(**self._base).inc()

    def notification(self, channel: str, ok: bool) -> None:
        self.notifications.labels(
            **self._base, channel=channel, result="sent" if ok else "failed"
        ).inc()

    def update(self, status: Status) -> None:
        """Set every gauge from the status object."""
        b = self._base
        if status.last_pass_at:
            self.last_pass.labels(**b).set(status.last_pass_at.timestamp())
        if status.last_success_at:
            self.last_success.labels(**b).set(status.last_success_at.timestamp())
        for gauge, rev in (
            (self.desired_revision, status.desired),
            (self.applied_revision, status.last_applied),
        ):
            gauge.clear()
            if rev is not None:
                gauge.labels(**b, revision=rev.sha).set(1)
        self.out_of_sync.labels(**b).set(len(status.out_of_sync))
        for gauge in (
            self.service_in_sync,
            self.service_healthy,
            self.replicas_desired,
            self.replicas_running,
        ):
            gauge.clear()
        for svc in status.inventory:
            self.service_in_sync.labels(**b, service=svc.name).set(1 if svc.in_sync else 0)
            self.service_healthy.labels(**b, service=svc.name).set(1 if svc.healthy else 0)
            self.replicas_desired.labels(**b, service=svc.name).set(svc.replicas_desired)
            self.replicas_running.labels(**b, service=svc.name).set(svc.replicas_running)
        self.quarantined.labels(**b).set(len(status.quarantine))
        for ctype in ConditionType:
            self.condition.labels(**b, type=ctype.value).set(1 if status.is_true(ctype) else 0)
        self._update_rollout(status.rollout)
        if status.lease is not None:  # state.store: swarm only
            self.lease_held.labels(**b).set(1 if status.lease.holding else 0)
            self.lease_term.labels(**b).set(status.lease.term)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
