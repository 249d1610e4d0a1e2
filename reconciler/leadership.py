"""Keeping the lease (``state.store: swarm``): read the lease object, decide with
:func:`reconciler.lease.decide`, take or renew it by compare-and-swap, and know until when this
agent may act. The daemon calls :meth:`Leadership.step` every third of the lease's duration and
runs a pass only while :meth:`Leadership.holds`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from loguru import logger

from reconciler.errors import ReconcilerError
from reconciler.lease import Decision, Lease, Sighting, Verdict, acts_until, decide, observe
from reconciler.status import AgentStanding


class Reading(Protocol):
    @property
    def lease(self) -> Lease | None: ...

    @property
    def version(self) -> int: ...


class LeaseObject(Protocol):
    """The versioned object holding the lease (``adapters.swarm_state.SwarmState``)."""

    def read(self) -> Reading: ...

    def swap(self, version: int, lease: Lease) -> bool: ...

    def forget(self) -> None: ...


class Leadership:
    def __init__(
        self,
        lease_object: LeaseObject,
        *,
        me: str,
        node: str,
        duration: float,
        now: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._object = lease_object
        self.me = me
        self.node = node
        self.duration = duration
        self._now = now
        self._monotonic = monotonic
        self._sighting: Sighting | None = None
        self._until = 0.0  # monotonic: this agent may act until then
        self._acquired: datetime | None = None
        self.standing = self._standing(False, 0, "", "", "the lease has not been read yet")

    def _standing(
        self, holding: bool, term: int, holder: str, node: str, why: str = ""
    ) -> AgentStanding:
        return AgentStanding(holding, holder, node, term, self.me, self.node, why)

    def holds(self) -> bool:
        return self._monotonic() < self._until

    def left(self) -> float:
        """Seconds this agent may still act (0 when it does not hold the lease)."""
        return max(0.0, self._until - self._monotonic())

    async def step(self) -> Decision | None:
        """Read the lease, then renew it, take it, or wait. None when the object cannot be read
        or written (the engine down, the Swarm without quorum): this agent then holds it only
        until its last renewal runs out."""
        started = self._monotonic()
        try:
            reading = await asyncio.to_thread(self._object.read)
        except ReconcilerError as exc:
            self._lapse(exc.message)
            return None
        self._sighting = observe(self._sighting, reading.lease, reading.version, started)
        decision = decide(self._sighting, self.me, started)
        if decision.verdict is Verdict.WAIT:
            self._lose(decision.why)
            lease = reading.lease
            self.standing = self._standing(
                False, decision.term, lease.holder if lease else "", lease.node if lease else "",
                decision.why,
            )  # fmt: skip
            return decision
        now = self._now()
        if decision.verdict is Verdict.TAKE or self._acquired is None:
            self._acquired = now
        lease = Lease(self.me, self.node, decision.term, self.duration, self._acquired, now)
        try:
            won = await asyncio.to_thread(self._object.swap, reading.version, lease)
        except ReconcilerError as exc:
            self._lapse(exc.message)
            return None
        if not won:
            self._lose("another agent wrote the lease first")
            return Decision(Verdict.WAIT, decision.term, self.duration, self.standing.why)
        if decision.verdict is Verdict.TAKE:
            logger.warning("took the lease (term {}): this agent now acts", decision.term)
        self._until = acts_until(started, self.duration)
        self.standing = self._standing(True, decision.term, self.me, self.node)
        return decision

    async def release(self) -> None:
        """Give the lease up (stopping cleanly): the next agent takes it at once."""
        if not self.holds() or self._sighting is None:
            return
        self._until = 0.0
        try:
            reading = await asyncio.to_thread(self._object.read)
            lease = reading.lease
            if lease is not None and lease.holder == self.me:
                released = Lease("", "", lease.term, lease.duration, lease.acquired_at, self._now())
                await asyncio.to_thread(self._object.swap, reading.version, released)
                logger.info("released the lease (term {})", lease.term)
        except ReconcilerError as exc:
            logger.warning("could not release the lease ({}): it expires on its own", exc.message)
        self._object.forget()

    def drop(self, why: str) -> None:
        """A write was refused although this agent believed it held the lease (another agent
        wrote the object): it stops acting now."""
        self._lose(why)

    def _lose(self, why: str) -> None:
        if self.holds():
            logger.error("lost the lease: {}", why)
        self._until = 0.0
        self._acquired = None
        self._object.forget()
        self.standing = self._standing(False, self.standing.term, "", "", why)

    def _lapse(self, error: str) -> None:
        """The lease could not be read or renewed: held until the last renewal runs out."""
        logger.warning("the lease cannot be renewed: {}", error)
        if not self.holds():
            self._lose(f"the lease cannot be read: {error}")
