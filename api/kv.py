"""The Redis adapter (``redis.asyncio``): the one module that imports the client library.

Every operation the API needs from Redis is a method here; library and socket errors become
``StoreUnavailable`` so that callers decide how to degrade (the cache falls through to
PostgreSQL, rate limits fail open, readiness reports 503).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from api.errors import StoreUnavailable
from api.settings import RedisSettings


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except (TimeoutError, RedisError, OSError) as exc:
        raise StoreUnavailable("redis", type(exc).__name__) from exc


class Kv:
    """A Redis client with the key prefix applied by the callers through ``key()``."""

    def __init__(self, settings: RedisSettings) -> None:
        self.prefix = settings.key_prefix
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.url,
            max_connections=settings.max_connections,
            timeout=settings.timeout,
            socket_timeout=settings.timeout,
            socket_connect_timeout=settings.timeout,
            health_check_interval=30,
        )
        self._client = aioredis.Redis(connection_pool=pool)
        self._scripts: dict[str, Any] = {}

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    async def close(self) -> None:
        await self._client.aclose()
        await self._client.connection_pool.disconnect()

    async def ping(self) -> None:
        async with _translated():
            await self._client.ping()

    async def get(self, key: str) -> bytes | None:
        async with _translated():
            value = await self._client.get(key)
        return (
            value
            if value is None
            else bytes(value, "utf-8")
            if isinstance(value, str)
            else bytes(value)
        )

    async def set(self, key: str, value: bytes | str, ttl_ms: int) -> None:
        async with _translated():
            await self._client.set(key, value, px=max(1, ttl_ms))

    async def delete(self, *keys: str) -> None:
        async with _translated():
            await self._client.delete(*keys)

    async def incr(self, key: str) -> int:
        async with _translated():
            value: int = await self._client.incr(key)
        return value

    async def zadd(self, key: str, member: str, score: float) -> None:
        async with _translated():
            await self._client.zadd(key, {member: score})

    async def zcount_since(self, key: str, since: float) -> int:
        """Drop members scored before ``since`` and count the rest (one round trip)."""
        async with _translated():
            pipe = self._client.pipeline(transaction=True)
            pipe.zremrangebyscore(key, "-inf", f"({since}")
            pipe.zcard(key)
            _, count = await pipe.execute()
        return int(count)

    def _script(self, source: str) -> Any:
        runner = self._scripts.get(source)
        if runner is None:
            runner = self._scripts[source] = self._client.register_script(source)
        return runner

    async def script(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a Lua script by SHA (loading it on first use)."""
        runner = self._script(source)
        async with _translated():
            return await runner(keys=list(keys), args=list(args))

    async def script_many(
        self, source: str, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]
    ) -> list[Any]:
        """Run a Lua script once per ``(keys, args)``, all in one round trip (a pipeline)."""
        runner = self._script(source)
        async with _translated(), self._client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                await runner(keys=list(keys), args=list(args), client=pipe)
            return list(await pipe.execute())

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        async with _translated():
            values = await self._client.mget(list(keys))
        return [v if v is None or isinstance(v, bytes) else str(v).encode() for v in values]
