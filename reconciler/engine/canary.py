"""The canary step of one service: Swarm's rolling update is held after the canary tasks; they
are watched until they run, then for the service's analysis window each is checked at its own
address and the analyses are measured against Prometheus. A definitive failure ends it at once.

The step's decisions are :mod:`reconciler.canary`'s and :mod:`reconciler.analysis`'s; this
module only measures, at the clock's pace, and reports what it sees (``ctx.report``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from loguru import logger

from reconciler.analysis import AnalysisRun, AnalysisSpec, Verdict, expand, measure
from reconciler.canary import Step, TaskChecks, TasksVerdict, canary_tasks, per_task
from reconciler.engine.context import PassContext
from reconciler.engine.verify import network_name
from reconciler.errors import Reason, ReconcilerError
from reconciler.models import CheckResult, ServiceSpec
from reconciler.ports import ProxyProvider
from reconciler.waves import tag

#: how often the canary's tasks are looked at while they start
POLL = 1.0


@dataclass(frozen=True)
class CanaryResult:
    service: str
    step: Step  # PASSED, FAILED or INCONCLUSIVE
    reason: Reason
    message: str
    checks: tuple[CheckResult, ...] = ()
    analyses: tuple[AnalysisRun, ...] = field(default_factory=tuple)


@dataclass
class _Window:
    """What the window has measured so far."""

    spec: ServiceSpec
    checks: TaskChecks = field(default_factory=TaskChecks)
    runs: dict[str, AnalysisRun] = field(default_factory=dict)
    due: dict[str, float] = field(default_factory=dict)

    def result(self, step: Step, reason: Reason, message: str) -> CanaryResult:
        checks = tuple(self.checks.latest.values())
        runs = tuple(self.runs.values())
        return CanaryResult(self.spec.name, step, reason, message, checks, runs)


class Canary:
    def __init__(
        self,
        ctx: PassContext,
        spec: ServiceSpec,
        canary: int,
        since: datetime,
        stable_image: str | None,
        proxies: ProxyProvider | None,
    ) -> None:
        self.ctx = ctx
        self.spec = spec
        self.canary = canary
        self.since = since
        self.stable_image = stable_image
        self.proxies = proxies
        self.window = _Window(spec, runs={a.name: AnalysisRun(a) for a in spec.analyses})

    # ---------------------------------------------------------------- the step

    async def run(self) -> CanaryResult:
        result = await self._run()
        self.ctx.report(self.spec.name, result.step, result.message, result.analyses)
        return result

    async def _run(self) -> CanaryResult:
        started = await self._started()
        if started.step is Step.FAILED:
            return self._failed(started)
        clock = self.ctx.ports.clock
        end = clock.monotonic() + self.spec.rollout.window
        self.window.due = dict.fromkeys(self.window.runs, clock.monotonic())
        while True:
            failed = await self._tick()
            if failed is not None:
                return failed
            if clock.monotonic() >= end:
                return self._at_window_end()
            await clock.sleep(self._pace())

    async def _look(self) -> TasksVerdict:
        tasks = await self.ctx.ports.swarm.tasks(self.ctx.config.stack, self.spec.name)
        checked = self.ctx.config.docker.preflight_images
        return canary_tasks(tasks, self.canary, self.since, image_checked=checked)

    async def _started(self) -> TasksVerdict:
        """Wait until the canary tasks run (or fail), at most the verify timeout."""
        clock, limit = self.ctx.ports.clock, self.ctx.config.timeouts.verify
        deadline = clock.monotonic() + limit
        while True:
            verdict = await self._look()
            self.ctx.report(self.spec.name, verdict.step, verdict.message, ())
            if verdict.step is not Step.WAITING:
                return verdict
            if clock.monotonic() >= deadline:
                message = f"the canary did not start within {limit:.0f}s: {verdict.message}"
                return TasksVerdict(Step.FAILED, message)
            await clock.sleep(POLL)

    def _failed(self, verdict: TasksVerdict) -> CanaryResult:
        """A canary task failed: the revision's fault, unless the registry did not serve it or
        the engine could not start it."""
        if verdict.gone:
            return self.window.result(Step.FAILED, Reason.DRIFT_DETECTED, verdict.message)
        if verdict.registry:
            return self.window.result(
                Step.INCONCLUSIVE, Reason.REGISTRY_UNAVAILABLE, verdict.message
            )
        if verdict.engine:
            return self.window.result(Step.INCONCLUSIVE, Reason.DOCKER_UNAVAILABLE, verdict.message)
        return self.window.result(Step.FAILED, Reason.HEALTH_CHECK_FAILED, verdict.message)

    def _pace(self) -> float:
        intervals = [a.interval for a in self.spec.analyses]
        if self.spec.health is not None:
            intervals.append(self.spec.health.interval)
        return max(0.5, min(intervals, default=POLL))

    # ---------------------------------------------------------------- one tick

    async def _tick(self) -> CanaryResult | None:
        """Measure what is due; the result when the canary failed at once, else None."""
        verdict = await self._look()
        if verdict.step is Step.FAILED:
            return self._failed(verdict)
        await self._check(verdict)
        wrong = self.window.checks.definitive
        if wrong is not None:
            message = f"{wrong.name}: {wrong.output}"
            return self.window.result(Step.FAILED, Reason.HEALTH_CHECK_FAILED, message)
        await self._measure()
        bad = next(
            (r for r in self.window.runs.values() if r.verdict(False) is Verdict.FAILED), None
        )
        if bad is not None:
            return self.window.result(Step.FAILED, Reason.ANALYSIS_FAILED, bad.summary())
        self.ctx.report(
            self.spec.name, Step.ANALYSING, verdict.message, tuple(self.window.runs.values())
        )
        return None

    async def _check(self, verdict: TasksVerdict) -> None:
        if self.spec.health is None:
            return
        checks = per_task(self.spec.health, verdict.running)
        results = await self.ctx.ports.checker.once(checks, self.proxies)
        self.window.checks = self.window.checks.add(results)

    async def _measure(self) -> None:
        clock = self.ctx.ports.clock
        now = clock.monotonic()
        for name, run in list(self.window.runs.items()):
            if now < self.window.due[name]:
                continue
            self.window.due[name] = now + run.spec.interval
            value, detail = await self._query(run.spec)
            self.window.runs[name] = run.add(measure(run.spec, value, detail, now))

    async def _query(self, analysis: AnalysisSpec) -> tuple[float | None, str]:
        source = self.ctx.ports.metrics
        if source is None:
            return None, "no Prometheus configured (analysis.prometheus_url)"
        values = {
            "tag": tag(self.spec.image) or "",
            "stable_tag": tag(self.stable_image or "") or "",
            "service": self.spec.name,
            "stack": self.ctx.config.stack,
        }
        try:
            promql = expand(analysis.query, values)
        except ValueError as exc:
            return None, str(exc)
        network = network_name(self.ctx.config.stack, self.ctx.config.analysis.network or None)
        proxy = None
        if network is not None and self.proxies is not None:
            try:
                proxy = await self.proxies.proxy_for(network)
            except ReconcilerError as exc:  # Prometheus cannot be reached: inconclusive
                return None, exc.message
        answer = await source.query(promql, proxy)
        return answer.value, answer.detail

    # ---------------------------------------------------------------- the window's end

    def _at_window_end(self) -> CanaryResult:
        failing = self.window.checks.failing
        if failing:
            message = f"{failing[0].name}: still failing at the window's end: {failing[0].output}"
            return self.window.result(Step.FAILED, Reason.HEALTH_CHECK_FAILED, message)
        runs = list(self.window.runs.values())
        verdicts = {r.spec.name: r.verdict(True) for r in runs}
        failed = [r for r in runs if verdicts[r.spec.name] is Verdict.FAILED]
        if failed:
            return self.window.result(Step.FAILED, Reason.ANALYSIS_FAILED, failed[0].summary())
        unsure = [r for r in runs if verdicts[r.spec.name] is Verdict.INCONCLUSIVE]
        if unsure:
            message = "; ".join(r.summary() for r in unsure)
            return self.window.result(Step.INCONCLUSIVE, Reason.ANALYSIS_INCONCLUSIVE, message)
        message = "; ".join([r.summary() for r in runs] or ["every canary task passed its check"])
        logger.info("canary of {} passed: {}", self.spec.name, message)
        return self.window.result(Step.PASSED, Reason.HEALTH_CHECK_FAILED, message)


async def canary_step(
    ctx: PassContext,
    spec: ServiceSpec,
    canary: int,
    since: datetime,
    stable_image: str | None,
    proxies: ProxyProvider | None,
) -> CanaryResult:
    return await Canary(ctx, spec, canary, since, stable_image, proxies).run()


def first_failure(results: Sequence[CanaryResult]) -> CanaryResult | None:
    """The failure that ends a wave's canary steps (a failed one before an inconclusive one)."""
    for step in (Step.FAILED, Step.INCONCLUSIVE):
        found = next((r for r in results if r.step is step), None)
        if found is not None:
            return found
    return None
