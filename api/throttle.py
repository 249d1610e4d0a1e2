"""The global per-client limit, counted in-process and synchronised with Redis in batches.

Asking Redis on every request costs a network round trip per request, more than everything else a
cached read does. So each replica counts requests per client address itself and decides at once
from what it knows: the global counts it last read back from Redis plus what it counted since.
A background task adds the local counts to the shared sliding-window counters (the same keys and
arithmetic as ``api.ratelimit``) every ``sync_interval`` seconds, all addresses in one pipelined
round trip, and reads the global counts back.

A replica re-reads a client's global counts when it sees the client first, or again after a quiet
spell longer than the sync interval, so no decision rests on counts older than that. Within one
replica the limit is exact; across replicas a client can exceed it by what the other replicas
admitted since their last sync, at most ``rate x sync_interval`` per other replica (with the
100 ms default and 3 replicas, 0.2 s worth of requests). Login attempts, where exactness matters,
use the per-request ``RateLimiter`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from loguru import logger

from api import tasks
from api.clock import Clock
from api.errors import StoreUnavailable
from api.kv import Kv
from api.ratelimit import ALLOW, SLIDING_WINDOW_SCRIPT, Decision, Limit, retry_after

_PRUNE_EVERY = 50  # syncs


@dataclass
class _Counts:
    window: int  # index of the current window these counts belong to
    prev: float = 0.0  # global count of the previous window, as last read
    cur: float = 0.0  # global count of this window, as last read (includes synced local counts)
    unsynced: dict[int, int] = field(default_factory=dict)  # window index -> local count
    learned_at: float = float("-inf")  # monotonic time the global counts were last read

    def local(self, window: int) -> int:
        return self.unsynced.get(window, 0)


class SharedThrottle:
    def __init__(self, kv: Kv, clock: Clock, limit: Limit, sync_interval: float = 0.1) -> None:
        self._kv = kv
        self._clock = clock
        self.limit = limit
        self._interval = sync_interval
        self._subjects: dict[str, _Counts] = {}
        self._task: asyncio.Task[None] | None = None
        self._syncs = 0
        self._failing = False  # Redis did not answer the last sync: decide locally

    async def check(self, subject: str) -> Decision:
        """Count one request for ``subject`` unless that would exceed the limit.

        Only the first request of a client this replica has not seen lately asks Redis (for the
        counts the other replicas recorded); every other decision is made from memory.
        """
        limit = self.limit
        index, offset = divmod(self._clock.now(), limit.window)
        window, elapsed = int(index), offset / limit.window
        counts = self._subjects.get(subject)
        if self._failing:  # Redis is not answering: do not make every request wait for it
            counts = counts or self._subjects.setdefault(subject, _Counts(window))
        elif counts is None or (
            not counts.unsynced and time.monotonic() - counts.learned_at > self._interval
        ):
            # new here, or quiet here while other replicas may have served it: ask Redis
            counts = await self._learn(subject, window, counts)
        if window != counts.window:
            # the window moved on: the last window's global count becomes the previous one
            # (its unsynced local count is still in ``unsynced`` under its own index)
            prev = counts.cur if window - counts.window == 1 else 0.0
            counts.window, counts.prev, counts.cur = window, prev, 0.0
        prev = counts.prev + counts.local(window - 1)
        cur = counts.cur + counts.local(window)
        if prev * (1.0 - elapsed) + cur + 1 > limit.limit:
            return Decision(False, retry_after(limit.limit, limit.window, elapsed, prev, cur))
        counts.unsynced[window] = counts.local(window) + 1
        return ALLOW

    async def _learn(self, subject: str, window: int, known: _Counts | None) -> _Counts:
        keys = (
            self._kv.key("rl", self.limit.name, subject, window),
            self._kv.key("rl", self.limit.name, subject, window - 1),
        )
        counts = known or _Counts(window)
        try:
            # cost 0, not enforced: reads both windows' counts without changing them
            _, prev, cur = await self._kv.script(
                SLIDING_WINDOW_SCRIPT, keys, (self.limit.limit, 0, 0, self.limit.window * 2000, 0)
            )
        except StoreUnavailable as exc:
            logger.warning("rate limit counts unknown (limiting locally): {}", exc)
            self._failing = True
        else:
            if not counts.unsynced:  # nothing counted here meanwhile that Redis lacks
                counts.window, counts.prev, counts.cur = window, float(prev), float(cur)
            counts.learned_at = time.monotonic()
        # a concurrent request for the same client may have learnt it meanwhile
        return self._subjects.setdefault(subject, counts)

    async def sync(self) -> None:
        """Add the local counts to Redis and read the global counts back (one round trip)."""
        batch = []
        for subject, counts in self._subjects.items():
            for window, count in counts.unsynced.items():
                batch.append((subject, counts, window, count))
        if not batch:
            return
        calls = []
        for subject, _, window, count in batch:
            keys = (
                self._kv.key("rl", self.limit.name, subject, window),
                self._kv.key("rl", self.limit.name, subject, window - 1),
            )
            calls.append((keys, (self.limit.limit, 0, count, self.limit.window * 2000, 0)))
        replies = await self._kv.script_many(SLIDING_WINDOW_SCRIPT, calls)
        learned_at = time.monotonic()
        for (_, counts, window, count), (_, prev, cur) in zip(batch, replies, strict=True):
            left = counts.unsynced.get(window, 0) - count  # counted while the sync was out
            if left > 0:
                counts.unsynced[window] = left
            else:
                counts.unsynced.pop(window, None)
            if window == counts.window:
                counts.prev, counts.cur = float(prev), float(cur)
                counts.learned_at = learned_at
            elif window == counts.window - 1:
                counts.prev = float(cur)
        self._syncs += 1
        if self._syncs % _PRUNE_EVERY == 0:
            self._prune()

    def _prune(self) -> None:
        current = int(self._clock.now() // self.limit.window)
        stale = [
            subject
            for subject, counts in self._subjects.items()
            if counts.window < current - 1 and not counts.unsynced
        ]
        for subject in stale:
            del self._subjects[subject]

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sync()
                if self._failing:
                    logger.info("rate limit counts are synchronised with Redis again")
                self._failing = False
            except StoreUnavailable as exc:
                if not self._failing:
                    logger.warning("rate limit counts not synchronised (limiting locally): {}", exc)
                self._failing = True

    def start(self) -> None:
        if self.limit.enabled and self._task is None:
            self._task = tasks.start(self._run(), "rate-limit-sync")

    async def stop(self) -> None:
        await tasks.stop(self._task)
        self._task = None
        with contextlib.suppress(StoreUnavailable):
            await self.sync()  # hand over what this replica counted
