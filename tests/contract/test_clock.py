"""The clock port: the fake clock keeps the real one's promises (UTC now, a monotonic clock that
a sleep moves on by at least the time slept)."""

from __future__ import annotations

from datetime import UTC

import pytest
from reconciler_support.fakes import FakeClock

from reconciler.adapters.clock import SystemClock
from reconciler.ports import Clock


@pytest.fixture(params=["fake", "real"])
def clock(request: pytest.FixtureRequest) -> Clock:
    return FakeClock() if request.param == "fake" else SystemClock()


async def test_a_sleep_moves_both_clocks_on_by_at_least_the_time_slept(clock: Clock) -> None:
    now, mono = clock.now(), clock.monotonic()
    await clock.sleep(0.05)
    assert clock.monotonic() - mono >= 0.05 - 1e-9
    assert (clock.now() - now).total_seconds() >= 0.049
    assert clock.now().utcoffset() == UTC.utcoffset(None)


async def test_a_negative_sleep_returns_at_once(clock: Clock) -> None:
    mono = clock.monotonic()
    await clock.sleep(-5)
    assert 0 <= clock.monotonic() - mono < 1
