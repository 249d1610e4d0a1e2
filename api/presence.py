"""Active users: signed-in users seen in the last few minutes, kept in a Redis sorted set.

Each replica records a user at most once per ``_REFRESH`` seconds, so a busy user costs one Redis
write per half minute rather than one per request. The count is shared by every replica.
"""

from __future__ import annotations

from loguru import logger

from api.clock import Clock
from api.errors import StoreUnavailable
from api.kv import Kv

_REFRESH = 30.0
_MAX_TRACKED = 50_000


class Presence:
    def __init__(self, kv: Kv, clock: Clock, window_seconds: int) -> None:
        self._kv = kv
        self._clock = clock
        self._window = window_seconds
        self._last_seen: dict[int, float] = {}

    @property
    def _key(self) -> str:
        return self._kv.key("active_users")

    async def seen(self, user_id: int) -> None:
        now = self._clock.now()
        if now - self._last_seen.get(user_id, -_REFRESH) < _REFRESH:
            return
        if len(self._last_seen) >= _MAX_TRACKED:
            self._last_seen.clear()
        self._last_seen[user_id] = now
        try:
            await self._kv.zadd(self._key, str(user_id), now)
        except StoreUnavailable as exc:
            logger.warning("active user not recorded: {}", exc)

    async def count(self) -> int | None:
        """Users seen within the window, or None when Redis cannot say."""
        try:
            return await self._kv.zcount_since(self._key, self._clock.now() - self._window)
        except StoreUnavailable as exc:
            logger.warning("active users not counted: {}", exc)
            return None
