"""The agent: owns the state directory, runs passes on an interval and on request, records them,
notifies, and stops safely.

* **Single instance**: an exclusive ``flock`` on ``<state_dir>/lock`` (a second agent exits).
* **Scheduling**: APScheduler's ``IntervalTrigger`` with jitter only *wakes* one runner task,
  which runs passes one after the other, so two passes never overlap and a burst of wake-ups
  (timer, "sync now", webhooks) coalesces into one pass. After a pass the trigger is re-armed with
  the normal interval, or the retry interval after an error.
* **Stopping**: on SIGTERM/SIGINT a pass in a read-only phase (fetch, render, plan, pre-flight,
  verify) is cancelled at once; one that is changing the Swarm or git (apply, rollback, revert,
  record) finishes that phase first, then stops. The journal makes the next start resume it. A
  second signal cancels at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger
from prometheus_client import CollectorRegistry

from reconciler.adapters.clock import SystemClock
from reconciler.adapters.git import GitRepo
from reconciler.adapters.http import HttpChecker
from reconciler.adapters.swarm import ProbeProxies, SwarmAdapter
from reconciler.config import Config
from reconciler.control import AgentControl, Component
from reconciler.errors import DockerError, InterruptedPass, Reason, mask_secrets
from reconciler.events import Event, Notifier
from reconciler.metrics import Metrics
from reconciler.models import PassOutcome, PassResult, Phase, RevisionInfo
from reconciler.pipeline import PassReport, Pipeline
from reconciler.ports import Clock, GitSource, HealthChecker, ProxyProvider, Swarm
from reconciler.record import events, record
from reconciler.state import StateLock, StateStore
from reconciler.status import ConditionType, Status


class Agent:
    """Implements :class:`reconciler.control.AgentControl`."""

    def __init__(
        self,
        config: Config,
        *,
        notifiers: Iterable[Notifier] = (),
        components: Iterable[Component] = (),
        clock: Clock | None = None,
        git: GitSource | None = None,
        swarm: Swarm | None = None,
        checker: HealthChecker | None = None,
        probes: Callable[[], ProxyProvider] | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.store = StateStore(config.state_dir)
        self.metrics = Metrics(config.stack, config.environment)
        self._lock = StateLock(config.state_dir)
        self._status = Status(stack=config.stack, environment=config.environment)
        self._swarm_adapter: SwarmAdapter | None = None
        if swarm is None:
            self._swarm_adapter = SwarmAdapter(
                clock=self.clock, cli=config.docker.cli, host=config.docker.host
            )
            swarm = self._swarm_adapter
            if probes is None:
                adapter = self._swarm_adapter
                probes = lambda: ProbeProxies(  # noqa: E731
                    adapter,
                    stack=config.stack,
                    image=config.health.probe_image,
                    labels=config.docker.probe_labels,
                )
        self.swarm = swarm
        self.git = git or GitRepo(config.git, config.checkout_dir)
        self.checker = checker or HttpChecker(
            self.clock, request_timeout=config.health.request_timeout
        )
        self.pipeline = Pipeline(
            config,
            git=self.git,
            swarm=self.swarm,
            checker=self.checker,
            clock=self.clock,
            store=self.store,
            probes=probes,
            on_phase=self._on_phase,
        )
        self._notifiers: list[Notifier] = list(notifiers)
        self._components: list[Component] = list(components)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._pass_lock = asyncio.Lock()
        self._trigger = "startup"
        self._current: asyncio.Task[PassReport] | None = None
        self._job: Job | None = None
        self._opened = False
        self._signals = 0

    # ---------------------------------------------------------------- AgentControl

    @property
    def status(self) -> Status:
        return self._status

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self.metrics.registry

    async def request_sync(self, reason: str = "manual") -> bool:
        if self._wake.is_set():
            return False
        self._trigger = reason
        self._wake.set()
        logger.info("sync requested ({})", reason)
        return True

    async def pause(self, reason: str = "") -> None:
        self._set_status(replace(self._status, paused=True, paused_reason=reason), save=True)
        logger.warning("applying paused: {}", reason or "no reason given")

    async def resume(self) -> None:
        self._set_status(replace(self._status, paused=False, paused_reason=""), save=True)
        logger.info("applying resumed")
        await self.request_sync("resume")

    async def release_quarantine(self, sha: str) -> bool:
        before = len(self._status.quarantine)
        matches = [q for q in self._status.quarantine if sha in ("all", q.revision.sha)]
        if not matches and sha != "all":
            matches = [q for q in self._status.quarantine if q.revision.sha.startswith(sha)]
            if len(matches) == 1:
                sha = matches[0].revision.sha
        status = self._status.without_quarantine(sha)
        self._set_status(status, save=True)
        return len(status.quarantine) < before

    def add_notifier(self, notifier: Notifier) -> None:
        self._notifiers.append(notifier)

    def record_notification(self, channel: str, ok: bool) -> None:
        self.metrics.notification(channel, ok)

    # ---------------------------------------------------------------- state

    def open(self) -> None:
        """Take the lock and load the persisted status (idempotent)."""
        if self._opened:
            return
        self._lock.acquire()
        try:
            self._status = self.store.load_status(self.config.stack, self.config.environment)
        except Exception:
            self._lock.release()
            raise
        self._status = replace(self._status, phase=None, progress="")
        self.metrics.update(self._status)
        self._opened = True

    def close(self) -> None:
        if self._opened:
            self._lock.release()
            self._opened = False

    def _set_status(self, status: Status, *, save: bool = False) -> None:
        self._status = status
        self.metrics.update(status)
        if save:
            self.store.save_status(status)

    def _on_phase(self, phase: Phase | None, message: str, revision: RevisionInfo | None) -> None:
        now = self.clock.now()
        status = replace(self._status, phase=phase, progress=message)
        if phase is not None:
            status = status.with_condition(
                ConditionType.RECONCILING, True, Reason.PROGRESSING.value, message, now
            )
        self._status = status
        if (
            self._stopping.is_set()
            and phase is not None
            and not self.pipeline.mutating
            and self._current is not None
        ):
            logger.warning("stopping: cancelling the pass before {}", phase.value)
            self._current.cancel()

    # ---------------------------------------------------------------- one pass

    async def run_pass(self, trigger: str = "manual") -> PassReport:
        """Run one pass now (waits for a running one to end first) and record it."""
        self.open()
        async with self._pass_lock:
            started = self.clock.now()
            try:
                report = await self.pipeline.run(self._status, trigger)
            except (asyncio.CancelledError, InterruptedPass):
                self._interrupted(trigger)
                raise
            except Exception as exc:  # a bug: record it, so the status shows it, and go on
                logger.exception("the pass crashed")
                message = f"internal error: {type(exc).__name__}: {exc}"
                outcome = PassOutcome(
                    PassResult.ERROR,
                    Reason.INTERNAL_ERROR,
                    mask_secrets(message),
                    started_at=started,
                    finished_at=self.clock.now(),
                )
                report = PassReport(outcome, trigger)
            await self._record(report)
            return report

    def _interrupted(self, trigger: str) -> None:
        now = self.clock.now()
        status = replace(self._status, phase=None, progress="").with_condition(
            ConditionType.RECONCILING, False, Reason.INTERRUPTED.value, "agent stopping", now
        )
        self._set_status(status, save=True)
        logger.warning(
            "pass interrupted ({}); {}",
            trigger,
            "it resumes at the next start" if self.store.load_journal() else "nothing was changed",
        )

    async def _record(self, report: PassReport) -> None:
        now = self.clock.now()
        before = self._status
        after = record(before, report, now, self.config.history_size)
        after, found = events(before, after, report, now)
        if report.fetch_failed:
            self.metrics.fetch_error()
        self.metrics.observe(report.outcome)
        self._set_status(after, save=True)
        out = report.outcome
        logger.bind(revision=out.revision.sha if out.revision else None, phase="record").info(
            "pass {}: {} ({}) in {:.1f}s",
            out.result.value,
            out.reason.value,
            out.message,
            out.duration_seconds,
        )
        if found:
            await self._notify(found)

    async def _notify(self, found: list[Event]) -> None:
        async def deliver(notifier: Notifier) -> None:
            for event in found:
                try:
                    async with asyncio.timeout(self.config.timeouts.notify):
                        await notifier.notify(event)
                except Exception as exc:  # a notifier must never break a pass
                    logger.warning("notifier {} failed on {}: {}", notifier.name, event.kind, exc)
                    self.metrics.notification(notifier.name, False)
                else:
                    # a queueing notifier counts its deliveries itself (record_notification)
                    if not getattr(notifier, "reports_delivery", False):
                        self.metrics.notification(notifier.name, True)

        for event in found:
            logger.info("event {}: {}", event.kind.value, event.summary())
        await asyncio.gather(*(deliver(n) for n in self._notifiers))

    # ---------------------------------------------------------------- the daemon

    async def sync_once(self, trigger: str = "manual") -> PassReport:
        """One pass (``reconciler sync``), stopping on SIGTERM/SIGINT like the daemon does."""
        self.open()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._handle_signal, sig)
        started: list[Component] = []
        try:
            await self._cleanup_probes()
            await self._start_components(started)
            self._current = asyncio.create_task(self.run_pass(trigger), name="reconcile-pass")
            try:
                return await self._current
            except asyncio.CancelledError as exc:
                raise InterruptedPass("stopped by a signal") from exc
        finally:
            self._current = None
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self._stop_components(started)  # notifications deliver what the pass found
            await self._shutdown_adapters()
            self.close()

    async def _start_components(self, started: list[Component]) -> None:
        for component in self._components:
            await component.start(self)
            started.append(component)
            logger.info("started {}", component.name)

    async def _stop_components(self, started: list[Component]) -> None:
        for component in reversed(started):
            try:
                await component.stop()
            except Exception as exc:
                logger.error("stopping {} failed: {}", component.name, exc)

    async def _cleanup_probes(self) -> None:
        if self._swarm_adapter is None:
            return
        with contextlib.suppress(DockerError):
            removed = await self._swarm_adapter.remove_probes(self.config.stack)
            if removed:
                logger.info("removed {} probe container(s) left by an earlier run", removed)

    async def _shutdown_adapters(self) -> None:
        if self._swarm_adapter is not None:
            await self._swarm_adapter.close()
        close = getattr(self.git, "close", None)
        if callable(close):
            close()

    def _handle_signal(self, signum: int) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        self._stopping.set()
        self.pipeline.stop_requested.set()
        current = self._current
        if current is None or current.done():
            logger.info("{}: stopping", name)
            return
        if self._signals > 1 or not self.pipeline.mutating:
            logger.warning("{}: cancelling the running pass", name)
            current.cancel()
        else:
            logger.warning(
                "{}: letting the {} phase finish, then stopping",
                name,
                self.pipeline.phase.value if self.pipeline.phase else "current",
            )

    async def _tick(self) -> None:
        self._wake.set()

    def _arm(self, seconds: float) -> None:
        trigger = IntervalTrigger(seconds=seconds, jitter=self.config.sync.jitter or None)
        if self._job is not None:
            self._job.reschedule(trigger)
            next_run: datetime | None = self._job.next_run_time
            self._status = replace(
                self._status, next_pass_at=next_run.astimezone(UTC) if next_run else None
            )

    async def run(self) -> int:
        """The daemon: passes until SIGTERM/SIGINT. Returns the process exit code."""
        self.open()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._handle_signal, sig)
        scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        started: list[Component] = []
        try:
            await self._cleanup_probes()
            await self._start_components(started)
            self._job = scheduler.add_job(
                self._tick,
                IntervalTrigger(
                    seconds=self.config.sync.interval, jitter=self.config.sync.jitter or None
                ),
                id="reconcile",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
            scheduler.start()
            self._wake.set()
            logger.info(
                "reconciler started: stack {} ({}), every {:.0f}s ± {:.0f}s from {} {}",
                self.config.stack,
                self.config.environment,
                self.config.sync.interval,
                self.config.sync.jitter,
                self.config.git.branch,
                self.config.git.path,
            )
            await self._runner()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            if scheduler.running:
                scheduler.shutdown(wait=False)
            await self._stop_components(started)
            await self._shutdown_adapters()
            self.store.save_status(self._status)
            self.close()
            logger.info("reconciler stopped")
        return 0

    async def _runner(self) -> None:
        stop_wait = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                wake_wait = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({wake_wait, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                wake_wait.cancel()
                if self._stopping.is_set():
                    break
                self._wake.clear()
                trigger, self._trigger = self._trigger, "interval"
                self._current = asyncio.create_task(self.run_pass(trigger), name="reconcile-pass")
                try:
                    report = await self._current
                except (asyncio.CancelledError, InterruptedPass):
                    if self._stopping.is_set():
                        break
                    raise
                except Exception:
                    logger.exception("the pass crashed; retrying after the retry interval")
                    report = None
                finally:
                    self._current = None
                self._arm(self._next_interval(report.outcome if report else None))
                self.store.save_status(self._status)
        finally:
            stop_wait.cancel()

    def _next_interval(self, outcome: PassOutcome | None) -> float:
        if outcome is None or outcome.result in (PassResult.ERROR, PassResult.FAILED):
            if outcome is not None and outcome.retry_after:
                return outcome.retry_after
            return self.config.sync.retry_interval
        return self.config.sync.interval


_: type[AgentControl] = Agent  # Agent implements the AgentControl protocol (checked by mypy)
