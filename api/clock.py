"""Time as an injectable dependency: the rate limiter, tokens and presence read it from here."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
