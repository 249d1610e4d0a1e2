"""Sync windows: whether changes may be applied at a moment, which window decides and until
when, from cron schedules in their time zones (across midnight, weekdays and daylight saving
changes), and the cron lines read as cron reads them. Every moment is a fixed datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reconciler import cron
from reconciler.windows import SyncWindow, WindowKind, is_open, verdict

BERLIN = ZoneInfo("Europe/Berlin")


def window(
    kind: str, schedule: str, hours: float, zone: str = "UTC", reason: str = ""
) -> SyncWindow:
    return SyncWindow(
        WindowKind(kind), cron.parse(schedule, zone), hours * 3600, time_zone=zone, reason=reason
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


# the weekend freeze: Friday 18:00 Berlin time for 60 hours (to Monday 06:00)
FREEZE = window("deny", "0 18 * * 5", 60, "Europe/Berlin", "weekend freeze")
# office hours: Monday to Friday 08:00 for 10 hours, Berlin time
OFFICE = window("allow", "0 8 * * 1-5", 10, "Europe/Berlin", "office hours")


def test_without_windows_changes_are_applied_at_any_time() -> None:
    seen = verdict((), utc(2026, 1, 3, 3))
    assert seen.open
    assert seen.until is None
    assert seen.message == "no sync windows: changes are applied at any time"
    assert is_open((), utc(2026, 1, 3, 3))


def test_a_deny_window_closes_from_its_start_to_its_end() -> None:
    # 2026-01-02 is a Friday; Berlin is UTC+1 in January
    before = verdict([FREEZE], berlin(2026, 1, 2, 17, 59))
    assert before.open
    assert before.until == berlin(2026, 1, 2, 18)
    assert before.message == (
        "no deny window is active; changes are applied until 2026-01-02 17:00 UTC"
    )
    start = verdict([FREEZE], berlin(2026, 1, 2, 18))
    assert not start.open, "the start is inside the window"
    assert start.window == FREEZE
    assert start.until == berlin(2026, 1, 5, 6)
    assert start.message == (
        "deny window '0 18 * * 5' (Europe/Berlin, weekend freeze) is active; changes are "
        "applied again from 2026-01-05 05:00 UTC"
    )
    assert not verdict([FREEZE], berlin(2026, 1, 4, 23, 59)).open  # Sunday night
    assert verdict([FREEZE], berlin(2026, 1, 5, 6)).open, "the end is outside the window"


def test_with_allow_windows_changes_are_applied_only_inside_one() -> None:
    saturday = verdict([OFFICE], berlin(2026, 1, 3, 12))
    assert not saturday.open
    assert saturday.window is None
    assert saturday.until == berlin(2026, 1, 5, 8)
    assert saturday.message == (
        "outside every allow window; changes are applied again from 2026-01-05 07:00 UTC"
    )
    wednesday = verdict([OFFICE], berlin(2026, 1, 7, 12))
    assert wednesday.open
    assert wednesday.window == OFFICE
    assert wednesday.until == berlin(2026, 1, 7, 18)
    assert wednesday.message == (
        "allow window '0 8 * * 1-5' (Europe/Berlin, office hours) is active; changes are "
        "applied until 2026-01-07 17:00 UTC"
    )
    assert not verdict([OFFICE], berlin(2026, 1, 7, 18)).open
    assert not verdict([OFFICE], berlin(2026, 1, 7, 7, 59)).open


def test_deny_wins_over_allow() -> None:
    friday_evening = berlin(2026, 1, 9, 17)  # inside office hours, inside the freeze
    late_office = window("allow", "0 8 * * 1-5", 11, "Europe/Berlin")
    assert verdict([late_office], friday_evening + timedelta(hours=1)).open
    seen = verdict([late_office, FREEZE], friday_evening + timedelta(hours=1))
    assert not seen.open
    assert seen.window == FREEZE
    # the freeze ends Monday 06:00, office hours start at 08:00: open again then
    assert seen.until == berlin(2026, 1, 12, 8)


def test_a_deny_window_inside_an_allow_window() -> None:
    lunch = window("deny", "0 12 * * *", 1, "Europe/Berlin", "lunch")
    windows = [OFFICE, lunch]
    morning = verdict(windows, berlin(2026, 1, 7, 11))
    assert morning.open
    assert morning.until == berlin(2026, 1, 7, 12)
    noon = verdict(windows, berlin(2026, 1, 7, 12, 30))
    assert not noon.open
    assert noon.window == lunch
    assert noon.until == berlin(2026, 1, 7, 13)


def test_a_window_across_midnight_and_into_the_next_weekday() -> None:
    night = window("allow", "0 22 * * 5", 4)  # Friday 22:00 UTC for 4 hours
    assert verdict([night], utc(2026, 1, 2, 22)).open
    saturday = verdict([night], utc(2026, 1, 3, 1, 30))
    assert saturday.open, "Friday's window is still open on Saturday at 01:30"
    assert saturday.until == utc(2026, 1, 3, 2)
    closed = verdict([night], utc(2026, 1, 3, 2))
    assert not closed.open
    assert closed.until == utc(2026, 1, 9, 22), "the next one is next Friday"
    assert not verdict([night], utc(2026, 1, 4, 1)).open, "not on Sunday"


def test_windows_that_follow_each_other_are_one_stretch() -> None:
    morning = window("allow", "0 8 * * *", 4)
    afternoon = window("allow", "0 12 * * *", 4)
    seen = verdict([morning, afternoon], utc(2026, 1, 7, 9))
    assert seen.open
    assert seen.until == utc(2026, 1, 7, 16)


def test_overlapping_occurrences_never_close_so_there_is_no_until() -> None:
    always = window("deny", "0 * * * *", 1.5)
    seen = verdict([always], utc(2026, 1, 7, 9, 45))
    assert not seen.open
    assert seen.until is None
    assert "applied again" not in seen.message


def test_the_window_follows_the_local_clock_across_daylight_saving() -> None:
    nightly = window("deny", "0 22 * * *", 1, "Europe/Berlin")
    # winter (UTC+1): 22:00 is 21:00 UTC; summer (UTC+2) from 2026-03-29: 20:00 UTC
    assert verdict([nightly], utc(2026, 3, 28, 20, 30)).open
    assert not verdict([nightly], utc(2026, 3, 28, 21, 30)).open
    assert not verdict([nightly], utc(2026, 3, 29, 20, 30)).open
    assert verdict([nightly], utc(2026, 3, 29, 21, 30)).open
    # and back to winter on 2026-10-25
    assert not verdict([nightly], utc(2026, 10, 25, 21, 30)).open


def test_a_duration_is_elapsed_time_across_the_change() -> None:
    # Sunday 00:00 Berlin for 6 hours on the night the clocks go forward: 23:00 UTC + 6h
    sunday = window("deny", "0 0 * * 0", 6, "Europe/Berlin")
    seen = verdict([sunday], utc(2026, 3, 29, 1))
    assert not seen.open
    assert seen.until == utc(2026, 3, 29, 5)  # 07:00 on the wall clock, 6 hours later


def test_a_start_in_the_hour_skipped_or_repeated_by_daylight_saving() -> None:
    early = window("deny", "30 2 * * *", 1, "Europe/Berlin")
    # 2026-03-29 02:30 does not exist: the window opens at 01:30 UTC (03:30 summer time)
    assert verdict([early], utc(2026, 3, 29, 1, 29)).open
    assert not verdict([early], utc(2026, 3, 29, 1, 30)).open
    # 2026-10-25 02:30 happens twice: the window opens once, at the first (00:30 UTC)
    assert not verdict([early], utc(2026, 10, 25, 0, 45)).open
    second = verdict([early], utc(2026, 10, 25, 1, 45))
    assert second.open, "the repeated 02:30 does not open it again"
    assert second.until == utc(2026, 10, 26, 1, 30)


def test_cron_counts_sunday_as_0_and_7_and_monday_as_1() -> None:
    friday_noon = utc(2026, 1, 2, 12)
    weekdays = cron.parse("0 9 * * 1-5")
    fires = [friday_noon]
    for _ in range(5):
        nxt = weekdays.next_fire(fires[-1])
        assert nxt is not None
        fires.append(nxt)
    assert [f.strftime("%a") for f in fires[1:]] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    for sunday in ("0", "7", "sun", "SUN"):
        fire = cron.parse(f"0 9 * * {sunday}").next_fire(friday_noon)
        assert fire is not None
        assert fire.strftime("%a %H:%M") == "Sun 09:00", sunday
    weekend = cron.parse("0 9 * * 6-7").next_fire(utc(2026, 1, 3, 10))
    assert weekend == utc(2026, 1, 4, 9)


@pytest.mark.parametrize(
    ("line", "zone", "said"),
    [
        ("0 22 * *", "UTC", "has 4 fields; a schedule has 5"),
        ("0 25 * * *", "UTC", "hour '25': the last value (25) is higher than the maximum"),
        ("0 22 1 * 1-5", "UTC", "restrict the day of month or the day of week, not both"),
        ("0 22 * * fri-sun", "UTC", "'fri-sun' runs backwards (Sunday is 0"),
        ("0 22 * * 8", "UTC", "day of week '8': '8' is not a day"),
        ("0 22 * * *", "Europe/Berln", "unknown time zone 'Europe/Berln'"),
    ],
)
def test_a_schedule_that_does_not_parse_says_why(line: str, zone: str, said: str) -> None:
    with pytest.raises(ValueError, match=said.replace("(", r"\(").replace(")", r"\)")):
        cron.parse(line, zone)
