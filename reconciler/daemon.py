"""The daemon around the agent: its components, signals and the schedule of passes.

* **Scheduling**: APScheduler's ``IntervalTrigger`` with jitter only *wakes* one runner task,
  which runs passes one after the other, so two passes never overlap and a burst of wake-ups
  (timer, "sync now", webhooks) coalesces into one pass. After a pass the trigger is re-armed with
  the interval the outcome calls for (``decisions.next_interval``).
* **Stopping**: on SIGTERM/SIGINT a pass in a read-only phase is cancelled at once; one that is
  changing the Swarm or git finishes that phase first, then stops. A second signal cancels at
  once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from reconciler.agent import Agent
from reconciler.control import Component
from reconciler.decisions import next_interval
from reconciler.errors import InterruptedPass, LeaseLost, LockError, StateError
from reconciler.leadership import Leadership
from reconciler.lease import Decision, Verdict, renew_every
from reconciler.outcome import PassOutcome

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Daemon:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._job: Job | None = None
        self._deadline: float | None = None  # loop (monotonic) time of the latest next pass
        self._signals = 0

    # ---------------------------------------------------------------- life cycle

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        """The lock, the signal handlers and the components, for as long as the agent runs."""
        agent = self.agent
        agent.open()
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            loop.add_signal_handler(sig, self._handle_signal, sig)
        started: list[Component] = []
        keeper: asyncio.Task[None] | None = None
        try:
            if agent.leadership is not None:
                keeper = asyncio.create_task(self._keep_lease(agent.leadership), name="lease")
            if agent.engine.cleanup is not None:
                await agent.engine.cleanup()
            for component in agent.components:
                await component.start(agent)
                started.append(component)
                logger.info("started {}", component.name)
            yield
        finally:
            for sig in _SIGNALS:
                loop.remove_signal_handler(sig)
            for component in reversed(started):  # notifications deliver what the pass found
                try:
                    await component.stop()
                except Exception as exc:
                    logger.error("stopping {} failed: {}", component.name, exc)
            if keeper is not None and agent.leadership is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
                await agent.leadership.release()
            agent.close()

    async def _await_lease(self, leadership: Leadership) -> None:
        """One pass by hand: wait for the lease as long as a holder that stopped renewing keeps
        it; ``LockError`` when a running agent holds it."""
        deadline = asyncio.get_running_loop().time() + leadership.duration + 2
        while not leadership.holds():
            if asyncio.get_running_loop().time() > deadline:
                raise LockError(f"another agent acts: {leadership.standing.why}")
            await asyncio.sleep(0.5)

    async def _keep_lease(self, leadership: Leadership) -> None:
        """Renew (or wait for) the lease every third of its duration, and wake exactly when a
        renewal that did not come back in time runs out, so a pass never outlives the lease."""
        agent = self.agent
        step: asyncio.Task[Decision | None] | None = None
        while True:
            was = leadership.holds()
            if step is None or step.done():
                step = asyncio.create_task(leadership.step(), name="lease-step")
            every = renew_every(leadership.duration)
            limit = min(every, leadership.left()) if was else every
            done, _ = await asyncio.wait({step}, timeout=limit)
            decision = None
            if step in done:
                try:
                    decision = step.result()
                except Exception:  # a bug: logged; the lease runs out unless renewed later
                    logger.exception("keeping the lease failed")
            holds = leadership.holds()
            agent.on_lease(leadership.standing, taken=holds and not was, lost=was and not holds)
            if step not in done:
                continue  # the engine is slow to answer: check again at the deadline
            pause = every
            if decision is not None and decision.verdict is Verdict.WAIT:
                pause = min(every, max(0.5, decision.wait))
            if holds:
                pause = min(pause, leadership.left())
            await asyncio.sleep(pause)

    async def sync_once(self, trigger: str = "manual") -> PassOutcome:
        """One pass (``reconciler sync``), stopping on SIGTERM/SIGINT like the daemon does."""
        agent = self.agent
        async with self._running():
            if agent.leadership is not None:
                await self._await_lease(agent.leadership)
            agent.current = asyncio.create_task(agent.run_pass(trigger), name="reconcile-pass")
            try:
                return await agent.current
            except asyncio.CancelledError as exc:
                raise InterruptedPass("stopped by a signal") from exc
            finally:
                agent.current = None

    async def run(self) -> int:
        """Passes until SIGTERM/SIGINT. Returns the process exit code."""
        agent, config = self.agent, self.agent.config
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        async with self._running():
            try:
                self._job = scheduler.add_job(
                    self._tick,
                    IntervalTrigger(
                        seconds=config.sync.interval, jitter=config.sync.jitter or None
                    ),
                    id="reconcile",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=None,
                )
                scheduler.start()
                agent.woken.set()
                logger.info(
                    "reconciler started: stack {} ({}), every {:.0f}s ± {:.0f}s from {} {}",
                    config.stack,
                    config.environment,
                    config.sync.interval,
                    config.sync.jitter,
                    config.git.branch,
                    config.git.path,
                )
                await self._runner()
            finally:
                if scheduler.running:
                    scheduler.shutdown(wait=False)
                self._save()
        logger.info("reconciler stopped")
        return 0

    # ---------------------------------------------------------------- the loop

    async def _tick(self) -> None:
        self.agent.woken.set()

    def _arm(self, seconds: float) -> None:
        jitter = self.agent.config.sync.jitter
        # the scheduler follows the wall clock; the monotonic deadline is the safety net when
        # the wall clock steps back (an hour back would otherwise hold every pass for an hour)
        late = seconds * 1.5 + jitter + 1.0  # later than the scheduler's own time, always
        self._deadline = asyncio.get_running_loop().time() + late
        trigger = IntervalTrigger(seconds=seconds, jitter=jitter or None)
        if self._job is not None:
            self._job.reschedule(trigger)
            next_run: datetime | None = self._job.next_run_time
            status = self.agent.status
            at = next_run.astimezone(UTC) if next_run else None
            self.agent.set_status(replace(status, next_pass_at=at))

    async def _next_wake(self) -> bool:
        """Wait for a wake-up; False when stopping instead."""
        agent = self.agent
        stop_wait = asyncio.ensure_future(agent.stopping.wait())
        wake_wait = asyncio.ensure_future(agent.woken.wait())
        timeout = None
        if self._deadline is not None:
            timeout = max(0.0, self._deadline - asyncio.get_running_loop().time())
        try:
            done, _ = await asyncio.wait(
                {wake_wait, stop_wait}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            wake_wait.cancel()
            stop_wait.cancel()
        if not done:
            logger.warning("the wall clock moved back: this pass runs on the monotonic schedule")
        return not agent.stopping.is_set()

    async def _runner(self) -> None:
        agent = self.agent
        while await self._next_wake():
            trigger = agent.take_trigger()
            if not agent.may_act:  # another agent holds the lease: this one waits, and says so
                self._arm(agent.config.sync.interval)
                continue
            agent.current = asyncio.create_task(agent.run_pass(trigger), name="reconcile-pass")
            outcome: PassOutcome | None
            try:
                outcome = await agent.current
            except (asyncio.CancelledError, InterruptedPass) as exc:
                if agent.stopping.is_set():
                    break
                if isinstance(exc, LeaseLost) and agent.leadership is not None:
                    agent.leadership.drop(exc.message)
                if not agent.may_act:  # the lease was lost: the holder finishes the pass
                    self._arm(agent.config.sync.interval)
                    continue
                raise
            except Exception:
                logger.exception("the pass crashed; retrying after the retry interval")
                outcome = None
            finally:
                agent.current = None
            sync = agent.config.sync
            self._arm(next_interval(outcome, interval=sync.interval, retry=sync.retry_interval))
            self._save()

    def _save(self) -> None:
        """Persist the status; a state directory that cannot be written is logged, and the
        daemon goes on (the next pass tries again)."""
        if not self.agent.may_act:
            return
        try:
            self.agent.store.save_status(self.agent.status)
        except (StateError, LeaseLost) as exc:
            logger.error("{}", exc.message)

    def _handle_signal(self, signum: int) -> None:
        agent = self.agent
        self._signals += 1
        name = signal.Signals(signum).name
        agent.stopping.set()
        agent.context.stop_requested.set()
        current = agent.current
        if current is None or current.done():
            logger.info("{}: stopping", name)
            return
        if self._signals > 1 or not agent.context.mutating:
            logger.warning("{}: cancelling the running pass", name)
            current.cancel()
        else:
            phase = agent.context.phase
            logger.warning(
                "{}: letting the {} phase finish, then stopping",
                name,
                phase.value if phase else "current",
            )
