"""The sliding-window arithmetic behind ``Retry-After``."""

from __future__ import annotations

import pytest

from api.ratelimit import retry_after


def test_waits_for_the_previous_window_to_fade() -> None:
    # limit 10 per 60 s; 10 in the previous window, 5 in this one, a quarter of it gone:
    # one more fits once 10 * (1 - e) + 5 <= 9, i.e. e >= 0.6: (0.6 - 0.25) * 60 = 21 s
    assert retry_after(10, 60, 0.25, prev=10, cur=5) == 21


def test_a_full_current_window_waits_for_the_next_one() -> None:
    # 10 in the current window, half gone: the rest of it, then until 10*(1-e') <= 9 (e' = 0.1)
    assert retry_after(10, 60, 0.5, prev=0, cur=10) == 36


def test_never_less_than_a_second() -> None:
    assert retry_after(10, 60, 0.999, prev=0, cur=9) == 1


@pytest.mark.parametrize("elapsed", [0.0, 0.3, 0.9])
def test_never_longer_than_two_windows(elapsed: float) -> None:
    assert retry_after(1, 60, elapsed, prev=1000, cur=1000) <= 120
