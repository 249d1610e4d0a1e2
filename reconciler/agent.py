"""The agent: owns the state directory, runs passes and records them, notifies, and offers
:class:`reconciler.control.AgentControl` to the components that run beside it (the status page,
the JSON API, webhooks, chat notifications). The daemon's loop around it is
:mod:`reconciler.daemon`.

* **Single instance**: an exclusive ``flock`` on ``<state_dir>/lock`` (a second agent exits).
* **Passes never overlap**: one pass at a time (a lock); requests coalesce into the next one.
* **Stopping**: a pass in a read-only phase (fetch, render, plan, pre-flight, verify) is
  cancelled at once; one that is changing the Swarm or git (apply, rollback, revert, record)
  finishes that phase first. The journal makes the next start resume it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace

from loguru import logger
from prometheus_client import CollectorRegistry

from reconciler.control import AgentControl, Component
from reconciler.engine import PassContext, run_pass
from reconciler.engine.promote import promote
from reconciler.errors import InterruptedPass, LeaseLost, Reason, ReconcilerError, StateError
from reconciler.events import Event, Notifier
from reconciler.metrics import Metrics
from reconciler.models import PassResult, Phase, RevisionInfo
from reconciler.outcome import PassOutcome
from reconciler.progress import RolloutStatus
from reconciler.record import events, record
from reconciler.state import StateLock
from reconciler.status import AgentStanding, ConditionType, Status
from reconciler.wiring import Engine


class Agent:
    """Implements :class:`reconciler.control.AgentControl`."""

    def __init__(
        self,
        engine: Engine,
        *,
        notifiers: Iterable[Notifier] = (),
        components: Iterable[Component] = (),
    ) -> None:
        config = engine.config
        self.config = config
        self.engine = engine
        self.clock = engine.ports.clock
        self.store = engine.store
        self.metrics = Metrics(config.stack, config.environment)
        self.metrics.watch_windows(config.sync.windows, self.clock.now)
        self.context = PassContext(
            config,
            engine.ports,
            engine.store,
            engine.masker,
            on_phase=self._on_phase,
            on_rollout=self._on_rollout,
        )
        self.components: list[Component] = list(components)
        self._lock = StateLock(config.state_dir)
        #: the lease this agent must hold to act (``state.store: swarm``); None: it always may
        self.leadership = engine.leadership
        self._status = Status(stack=config.stack, environment=config.environment)
        self._notifiers: list[Notifier] = list(notifiers)
        self._wake = asyncio.Event()
        self._pass_lock = asyncio.Lock()
        self._trigger = "startup"
        self._opened = False
        #: set while stopping: a pass entering a read-only phase is cancelled
        self.stopping = asyncio.Event()
        self.current: asyncio.Task[PassOutcome] | None = None

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
        self.set_status(replace(self._status, paused=True, paused_reason=reason), save=True)
        logger.warning("applying paused: {}", reason or "no reason given")

    async def resume(self) -> None:
        self.set_status(replace(self._status, paused=False, paused_reason=""), save=True)
        logger.info("applying resumed")
        await self.request_sync("resume")

    async def sync_anyway(self, sha: str | None = None) -> str | None:
        head = self._status.desired
        if not sha:
            allowed = head.sha if head else None
        elif head is not None and head.sha.startswith(sha):
            allowed = head.sha
        else:
            allowed = sha if len(sha) in (40, 64) else None  # a full sha the agent has not seen
        if allowed is None:
            return None
        self.set_status(replace(self._status, sync_anyway=allowed), save=True)
        logger.warning("sync anyway: {} may be applied outside the sync windows", allowed[:12])
        await self.request_sync("sync-anyway")
        return allowed

    async def release_quarantine(self, sha: str) -> bool:
        before = len(self._status.quarantine)
        matches = [q for q in self._status.quarantine if sha in ("all", q.revision.sha)]
        if not matches and sha != "all":
            matches = [q for q in self._status.quarantine if q.revision.sha.startswith(sha)]
            if len(matches) == 1:
                sha = matches[0].revision.sha
        status = self._status.without_quarantine(sha)
        self.set_status(status, save=True)
        return len(status.quarantine) < before

    def add_notifier(self, notifier: Notifier) -> None:
        self._notifiers.append(notifier)

    def record_notification(self, channel: str, ok: bool) -> None:
        self.metrics.notification(channel, ok)

    # ---------------------------------------------------------------- state

    def open(self) -> None:
        """Take the lock and load the persisted status (idempotent). With a lease there is no
        lock: the status is the holder's, read again when this agent takes the lease."""
        if self._opened:
            return
        if self.leadership is not None:
            self._reload()
            self._opened = True
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

    def _reload(self) -> None:
        lease = self._status.lease
        try:
            status = self.store.load_status(self.config.stack, self.config.environment)
        except ReconcilerError as exc:
            logger.error("the status cannot be read: {}", exc.message)
            return
        self._status = replace(status, phase=None, progress="", lease=lease)
        self.metrics.update(self._status)

    def _tidy(self) -> None:
        try:
            removed = self.store.tidy()
        except ReconcilerError as exc:
            logger.warning("what an earlier agent left of its state stays: {}", exc.message)
            return
        if removed:
            logger.info("removed {} state document(s) an earlier agent left unnamed", removed)

    def close(self) -> None:
        if self._opened:
            if self.leadership is None:
                self._lock.release()
            self._opened = False

    @property
    def may_act(self) -> bool:
        return self.leadership is None or self.leadership.holds()

    def on_lease(self, standing: AgentStanding, *, taken: bool, lost: bool) -> None:
        """The lease was read: this agent took it (its status is read again: the last holder's,
        and a pass runs now), lost it (the pass running is stopped at once), or holds or waits
        as before."""
        if taken:
            self._reload()
            self._tidy()
        self.set_status(replace(self._status, lease=standing))
        if taken:
            self._wake.set()
            self._trigger = "lease taken"
        if lost and self.current is not None and not self.current.done():
            logger.error("lost the lease: stopping the pass now ({})", standing.why)
            self.current.cancel()

    def set_status(self, status: Status, *, save: bool = False) -> None:
        self._status = status
        self.metrics.update(status)
        if save and self.may_act:
            try:
                self.store.save_status(status)
            except StateError as exc:  # kept in memory (page, API, metrics); saved next time
                logger.error("{}", exc.message)
            except LeaseLost as exc:  # the holder's status stands
                logger.warning("{}", exc.message)

    def _on_phase(self, phase: Phase | None, message: str, revision: RevisionInfo | None) -> None:
        now = self.clock.now()
        status = replace(self._status, phase=phase, progress=message)
        if phase is not None:
            status = status.with_condition(
                ConditionType.RECONCILING, True, Reason.PROGRESSING, message, now
            )
        self._status = status
        if (
            self.stopping.is_set()
            and phase is not None
            and not self.context.mutating
            and self.current is not None
        ):
            logger.warning("stopping: cancelling the pass before {}", phase.value)
            self.current.cancel()

    def _on_rollout(self, rollout: RolloutStatus) -> None:
        self.set_status(replace(self._status, rollout=rollout))

    # ---------------------------------------------------------------- waking

    @property
    def woken(self) -> asyncio.Event:
        """Set when a pass is asked for (the timer, ``request_sync``, a webhook)."""
        return self._wake

    def take_trigger(self) -> str:
        """What asked for the pass about to run (and forget it)."""
        self._wake.clear()
        trigger, self._trigger = self._trigger, "interval"
        return trigger

    # ---------------------------------------------------------------- one pass

    async def run_pass(self, trigger: str = "manual") -> PassOutcome:
        """Run one pass now (waits for a running one to end first) and record it."""
        self.open()
        async with self._pass_lock:
            started = self.clock.now()
            try:
                outcome = await run_pass(self.context, self._status, trigger)
            except (asyncio.CancelledError, InterruptedPass):
                self._interrupted(trigger)
                raise
            except StateError as exc:  # disk full: nothing applied without a journal; retried
                logger.error("{}", exc.message)
                outcome = PassOutcome(
                    PassResult.ERROR,
                    exc.reason,
                    exc.message,
                    trigger=trigger,
                    started_at=started,
                    finished_at=self.clock.now(),
                )
            except Exception as exc:  # a bug: record it, so the status shows it, and go on
                logger.exception("the pass crashed")
                message = f"internal error: {type(exc).__name__}: {exc}"
                outcome = PassOutcome(
                    PassResult.ERROR,
                    Reason.INTERNAL_ERROR,
                    self.engine.masker.mask(message),
                    trigger=trigger,
                    started_at=started,
                    finished_at=self.clock.now(),
                )
            await self._record(outcome)
            await self._promote()
            return outcome

    async def _promote(self) -> None:
        """Propose the revision verified here to the next environment, when one is due."""
        try:
            promoted = await promote(self.context, self._status)
        except Exception:  # a bug must not stop the agent: logged, tried after the next pass
            logger.exception("the promotion crashed")
            return
        if promoted is not None:
            self.set_status(promoted, save=True)

    def _interrupted(self, trigger: str) -> None:
        now = self.clock.now()
        status = replace(self._status, phase=None, progress="").with_condition(
            ConditionType.RECONCILING, False, Reason.INTERRUPTED, "agent stopping", now
        )
        self.set_status(status, save=True)
        logger.warning(
            "pass interrupted ({}); {}",
            trigger,
            "it resumes at the next start" if self.store.has_journal() else "nothing was changed",
        )

    async def _record(self, out: PassOutcome) -> None:
        now = self.clock.now()
        before = self._status
        after = record(before, out, now, self.config.history_size)
        after, found = events(before, after, out, now)
        if out.fetch_failed:
            self.metrics.fetch_error()
        self.metrics.observe(out)
        self.set_status(after, save=True)
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


_: type[AgentControl] = Agent  # Agent implements the AgentControl protocol (checked by mypy)
