"""Rate limits shared by every replica: a sliding-window counter in Redis.

Each limit keeps one counter per fixed window; the estimate for "the last ``window`` seconds" is
``previous * (1 - elapsed) + current`` (the approach Cloudflare describes), which smooths the burst
a plain fixed window allows at window edges. Decision and increment happen in one Lua script, so
concurrent requests on three replicas cannot overshoot. Redis being down lets requests through
(and is logged): a broken limiter must not take the shop offline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from loguru import logger

from api.clock import Clock
from api.errors import StoreUnavailable
from api.kv import Kv

SLIDING_WINDOW_SCRIPT = """
local limit = tonumber(ARGV[1])
local weight = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local ttl_ms = tonumber(ARGV[4])
local enforce = ARGV[5] == '1'
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
if enforce and prev * weight + cur + math.max(cost, 1) > limit then
  return {0, tostring(prev), tostring(cur)}
end
if cost > 0 then
  cur = redis.call('INCRBY', KEYS[1], cost)
  if cur == cost then redis.call('PEXPIRE', KEYS[1], ttl_ms) end
end
return {1, tostring(prev), tostring(cur)}
"""


class Mode(Enum):
    HIT = "hit"  # count this request, refuse it when over the limit
    CHECK = "check"  # refuse when over the limit, count nothing
    ADD = "add"  # count, never refuse (e.g. a failed login recorded after the fact)


@dataclass(frozen=True)
class Limit:
    name: str
    limit: int
    window: int  # seconds

    @property
    def enabled(self) -> bool:
        return self.limit > 0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0


ALLOW = Decision(True)


def retry_after(limit: int, window: int, elapsed: float, prev: float, cur: float) -> int:
    """Seconds until one more request fits, given the counts of the previous and current window.

    ``elapsed`` is the fraction of the current window that has passed (0 <= elapsed < 1).
    """
    budget = limit - 1
    if cur > budget:
        # only after this window ends, once its count has faded enough as the "previous" one
        fade = 1.0 - budget / cur if cur > 0 else 0.0
        wait = (1.0 - elapsed) + fade
    elif prev > 0:
        # the previous window's share fades; at the latest the next window starts with room
        wait = min((1.0 - (budget - cur) / prev) - elapsed, 1.0 - elapsed)
    else:
        wait = 0.0
    return max(1, math.ceil(wait * window))


class RateLimiter:
    def __init__(self, kv: Kv, clock: Clock) -> None:
        self._kv = kv
        self._clock = clock

    async def apply(self, limit: Limit, subject: str, mode: Mode = Mode.HIT) -> Decision:
        if not limit.enabled:
            return ALLOW
        now = self._clock.now()
        index, offset = divmod(now, limit.window)
        elapsed = offset / limit.window
        current = self._kv.key("rl", limit.name, subject, int(index))
        previous = self._kv.key("rl", limit.name, subject, int(index) - 1)
        args = (
            limit.limit,
            1.0 - elapsed,
            0 if mode is Mode.CHECK else 1,
            limit.window * 2000,
            0 if mode is Mode.ADD else 1,
        )
        try:
            allowed, prev, cur = await self._kv.script(
                SLIDING_WINDOW_SCRIPT, (current, previous), args
            )
        except StoreUnavailable as exc:
            logger.warning("rate limit {} not applied: {}", limit.name, exc)
            return ALLOW
        if allowed:
            return ALLOW
        wait = retry_after(limit.limit, limit.window, elapsed, float(prev), float(cur))
        return Decision(False, wait)

    async def reset(self, limit: Limit, subject: str) -> None:
        now = self._clock.now()
        index = int(now // limit.window)
        keys = [self._kv.key("rl", limit.name, subject, i) for i in (index, index - 1)]
        try:
            await self._kv.delete(*keys)
        except StoreUnavailable as exc:
            logger.warning("rate limit {} not reset: {}", limit.name, exc)
