"""Cache-aside for listings and items in Redis, invalidated by bumping a namespace version.

Entries live under ``cache:<namespace>:<version>:<entry>``. A write bumps the namespace version
after its transaction commits, so every older entry is unreachable at once (they expire by TTL).
A reader fetches version and entry in one script call; on a miss it queries PostgreSQL and stores
the result only if the version has not moved meanwhile. That closes the classic cache-aside race
where a slow reader writes back data older than a concurrent write. If Redis is unreachable the
cache steps aside and every read goes to PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from loguru import logger

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


@dataclass(frozen=True)
class Lookup:
    value: bytes | None
    version: str | None  # None when Redis could not be asked


class Cache:
    def __init__(self, kv: Kv, metrics: Metrics, ttl_seconds: int) -> None:
        self._kv = kv
        self._metrics = metrics
        self._ttl_ms = ttl_seconds * 1000

    def _base(self, namespace: str) -> str:
        return self._kv.key("cache", namespace, "")

    async def get_or_load(
        self, namespace: str, kind: str, entry: str, load: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """The cached bytes for ``entry``, or ``load()``'s result (stored for the next reader)."""
        found = await self._lookup(namespace, entry)
        if found.value is not None:
            self._metrics.cache_requests.labels(kind, "hit").inc()
            return found.value
        self._metrics.cache_requests.labels(kind, "miss").inc()
        value = await load()
        if found.version is not None:
            await self._fill(namespace, found.version, entry, value)
        return value

    async def invalidate(self, namespace: str) -> None:
        try:
            await self._kv.incr(self._kv.key("cache", namespace, "version"))
        except StoreUnavailable as exc:
            # entries expire within the TTL; say so loudly, a stale read is visible to users
            logger.error("cache {} not invalidated, stale for up to its TTL: {}", namespace, exc)

    async def _lookup(self, namespace: str, entry: str) -> Lookup:
        version_key = self._kv.key("cache", namespace, "version")
        try:
            version, value = await self._kv.script(
                _READ, (version_key,), (self._base(namespace), entry)
            )
        except StoreUnavailable as exc:
            logger.warning("cache {} skipped: {}", namespace, exc)
            return Lookup(None, None)
        return Lookup(value, version.decode() if isinstance(version, bytes) else str(version))

    async def _fill(self, namespace: str, version: str, entry: str, value: bytes) -> None:
        version_key = self._kv.key("cache", namespace, "version")
        args = (self._base(namespace), version, entry, value, self._ttl_ms)
        try:
            await self._kv.script(_FILL, (version_key,), args)
        except StoreUnavailable as exc:
            logger.warning("cache {} not filled: {}", namespace, exc)
