"""Cache-aside for listings and items: Redis shared by every replica, plus a small in-process tier.

Entries live in Redis under ``cache:<namespace>:<version>:<entry>``. A write bumps the namespace
version after its transaction commits, so every older entry is unreachable at once (they expire by
TTL). A reader fetches version and entry in one script call; on a miss it queries PostgreSQL and
stores the result only if the version has not moved meanwhile. That closes the classic cache-aside
race where a slow reader writes back data older than a concurrent write.

In front of Redis each process keeps the entries it served, tagged with their version, and reads
the namespace versions from Redis every ``sync_interval`` seconds (one MGET for all namespaces).
A local entry is used only while its version is the latest one seen and the last sync is recent,
so a write made through this replica is visible at once, and one made through another replica
within one sync interval (100 ms by default). If Redis is unreachable both tiers step aside and
every read goes to PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from loguru import logger

from api import tasks
from api.errors import StoreUnavailable
from api.kv import Kv
from api.metrics import Metrics

_READ = """
local v = redis.call('GET', KEYS[1]) or '0'
return {v, redis.call('GET', ARGV[1] .. v .. ':' .. ARGV[2])}
"""
_FILL = """
if (redis.call('GET', KEYS[1]) or '0') == ARGV[2] then
  redis.call('SET', ARGV[1] .. ARGV[2] .. ':' .. ARGV[3], ARGV[4], 'PX', ARGV[5])
  return 1
end
return 0
"""
_LOCAL_ENTRIES = 2048


@dataclass(frozen=True)
class Lookup:
    value: bytes | None
    version: int | None  # None when Redis could not be asked


@dataclass(frozen=True)
class _Local:
    version: int
    value: bytes
    stored_at: float  # monotonic


class Cache:
    def __init__(
        self,
        kv: Kv,
        metrics: Metrics,
        ttl_seconds: int,
        namespaces: tuple[str, ...] = (),
        sync_interval: float = 0.1,
    ) -> None:
        self._kv = kv
        self._metrics = metrics
        self._ttl = ttl_seconds
        self._interval = sync_interval
        self._namespaces = list(namespaces)
        self._versions: dict[str, int] = {}
        self._synced_at = float("-inf")
        self._local: OrderedDict[tuple[str, str], _Local] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    def _version_key(self, namespace: str) -> str:
        return self._kv.key("cache", namespace, "version")

    def _base(self, namespace: str) -> str:
        return self._kv.key("cache", namespace, "")

    async def get_or_load(
        self, namespace: str, kind: str, entry: str, load: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """The cached bytes for ``entry``, or ``load()``'s result (stored for the next reader)."""
        local = self._local_hit(namespace, entry)
        if local is not None:
            self._metrics.cache_requests.labels(kind, "hit").inc()
            return local
        found = await self._lookup(namespace, entry)
        if found.value is not None:
            self._metrics.cache_requests.labels(kind, "hit").inc()
            self._remember(namespace, entry, found.version, found.value)
            return found.value
        self._metrics.cache_requests.labels(kind, "miss").inc()
        value = await load()
        if found.version is not None and await self._fill(namespace, found.version, entry, value):
            self._remember(namespace, entry, found.version, value)
        return value

    async def invalidate(self, namespace: str) -> None:
        try:
            version = await self._kv.incr(self._version_key(namespace))
        except StoreUnavailable as exc:
            # entries expire within the TTL; say so loudly, a stale read is visible to users
            logger.error("cache {} not invalidated, stale for up to its TTL: {}", namespace, exc)
            self._local.clear()
            return
        self._see(namespace, version)

    # ------------------------------------------------------------------ the local tier

    def _see(self, namespace: str, version: int) -> None:
        # versions only grow; an older answer arriving late must not revive older entries
        if version > self._versions.get(namespace, -1):
            self._versions[namespace] = version
        if namespace not in self._namespaces:
            self._namespaces.append(namespace)

    def _local_hit(self, namespace: str, entry: str) -> bytes | None:
        if self._interval <= 0:
            return None
        now = time.monotonic()
        if now - self._synced_at > 3 * self._interval:
            return None  # versions not confirmed recently: ask Redis
        found = self._local.get((namespace, entry))
        if found is None:
            return None
        if found.version != self._versions.get(namespace) or now - found.stored_at > self._ttl:
            del self._local[(namespace, entry)]
            return None
        self._local.move_to_end((namespace, entry))
        return found.value

    def _remember(self, namespace: str, entry: str, version: int | None, value: bytes) -> None:
        if self._interval <= 0 or version is None:
            return
        self._see(namespace, version)
        if version != self._versions[namespace]:
            return
        self._local[(namespace, entry)] = _Local(version, value, time.monotonic())
        self._local.move_to_end((namespace, entry))
        while len(self._local) > _LOCAL_ENTRIES:
            self._local.popitem(last=False)

    async def sync(self) -> None:
        """Read every namespace's version from Redis (one round trip)."""
        if not self._namespaces:
            return
        namespaces = list(self._namespaces)
        started = time.monotonic()
        values = await self._kv.get_many([self._version_key(ns) for ns in namespaces])
        for namespace, value in zip(namespaces, values, strict=True):
            self._see(namespace, int(value or 0))
        self._synced_at = started

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                await self.sync()
                if failing:
                    logger.info("cache versions are synchronised with Redis again")
                failing = False
            except StoreUnavailable as exc:
                if not failing:
                    logger.warning("cache versions not synchronised (local tier off): {}", exc)
                failing = True
                self._local.clear()
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = tasks.start(self._run(), "cache-version-sync")

    async def stop(self) -> None:
        await tasks.stop(self._task)
        self._task = None

    # ------------------------------------------------------------------ Redis

    async def _lookup(self, namespace: str, entry: str) -> Lookup:
        try:
            version, value = await self._kv.script(
                _READ, (self._version_key(namespace),), (self._base(namespace), entry)
            )
        except StoreUnavailable as exc:
            logger.warning("cache {} skipped: {}", namespace, exc)
            return Lookup(None, None)
        return Lookup(value, int(version))

    async def _fill(self, namespace: str, version: int, entry: str, value: bytes) -> bool:
        args = (self._base(namespace), version, entry, value, self._ttl * 1000)
        try:
            return bool(await self._kv.script(_FILL, (self._version_key(namespace),), args))
        except StoreUnavailable as exc:
            logger.warning("cache {} not filled: {}", namespace, exc)
            return False
