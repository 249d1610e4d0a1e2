"""Cron schedules of five fields (minute, hour, day of month, month, day of week) as crontab(5)
and Argo CD's sync windows read them, in an IANA time zone: when does a schedule next fire.

APScheduler 3's ``CronTrigger`` does the date arithmetic (minutes, months, leap years and the
zone's daylight saving changes). Two places where it reads a crontab line differently from cron
are settled here, before it sees the line:

* the day of week: cron counts 0 (and 7) as Sunday and 1 as Monday; APScheduler 3 counts 0 as
  Monday (a documented historical mistake it keeps for compatibility). The field is translated
  into day names here, so ``1-5`` means Monday to Friday, as it does for cron;
* cron fires when the day of month *or* the day of week matches, when both are restricted;
  APScheduler needs both to match. Such a line is refused rather than read differently.

Pure computation: no clock is read (the caller says from when), and a time zone is always given
(APScheduler would otherwise ask the machine for its local zone). Only this module and the
daemon's scheduler import APScheduler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

#: cron's day numbers: 0 (and 7) is Sunday
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_ITEM = re.compile(r"^(?P<range>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>\d+))?$")
_ANY = ("*", "?")


def zone(name: str) -> tzinfo:
    """The time zone of an IANA name (``Europe/Berlin``) or ``UTC``; ``ValueError`` otherwise."""
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name such as Europe/Berlin, or UTC)"
        ) from exc


def _day(token: str) -> int:
    """A day of week as cron names it (a number 0-7 or a three-letter name) → 0 (Sunday) .. 6."""
    if token.isdigit() and int(token) <= 7:
        return int(token) % 7
    if token in _DAYS:
        return _DAYS.index(token)
    raise ValueError(f"{token!r} is not a day (sun, mon, ... sat, or 0-7)")


def _days(item: str) -> set[int]:
    """One comma-separated part of the day-of-week field → the days it names (0 = Sunday)."""
    match = _DAY_ITEM.match(item)
    if match is None:
        raise ValueError(f"{item!r} is not a day, a range or a step")
    step = int(match["step"]) if match["step"] else 1
    if step < 1:
        raise ValueError(f"{item!r}: the step must be at least 1")
    span = match["range"]
    if span == "*":
        first, last = 0, 6
    elif "-" in span:
        low, high = span.split("-")
        first, last = _day(low), _day(high)
        if high == "7":
            last = 7  # 5-7: Friday to Sunday
        if last < first:
            raise ValueError(f"{item!r} runs backwards (Sunday is 0: write 5-7 or fri,sat,sun)")
    else:
        first = _day(span)
        last = 6 if match["step"] else first  # cron's N/step: from N to the end of the week
    return {day % 7 for day in range(first, last + 1, step)}


def _day_of_week(text: str) -> str:
    """Cron's day-of-week field in APScheduler 3's words: day names, never numbers."""
    if text in _ANY:
        return "*"
    days: set[int] = set()
    for item in text.lower().split(","):
        days |= _days(item)
    monday_first = sorted(days, key=lambda d: (d - 1) % 7)
    return ",".join(_DAYS[d] for d in monday_first)


def _repeated(fire: datetime) -> bool:
    """``fire`` is the second occurrence of a wall-clock time (the hour repeated in autumn)."""
    return fire.fold == 1 and fire.replace(fold=0).utcoffset() != fire.utcoffset()


@dataclass(frozen=True)
class Cron:
    """A parsed schedule in its time zone. Equal when the line and the zone are."""

    expression: str
    time_zone: str
    _trigger: CronTrigger = field(compare=False, repr=False)

    def next_fire(self, after: datetime) -> datetime | None:
        """The first time the schedule fires strictly after ``after`` (aware), in UTC; None if
        it never fires again (a 30th of February).

        Daylight saving changes as cron has them: a time in the hour repeated when the clocks go
        back fires once, at its first occurrence; a time in the hour skipped when they go
        forward fires at the instant it would have had (02:30 → 03:30 summer time)."""
        fire = self._after(after)
        while fire is not None and _repeated(fire):
            fire = self._after(fire)
        return None if fire is None else fire.astimezone(UTC)

    def _after(self, moment: datetime) -> datetime | None:
        # in UTC: arithmetic on a local time would lose which of a repeated hour it is
        fire: datetime | None = self._trigger.get_next_fire_time(
            None, moment.astimezone(UTC) + timedelta(microseconds=1)
        )
        return fire


def parse(expression: str, time_zone: str = "UTC") -> Cron:
    """A five-field cron line in ``time_zone``; ``ValueError`` saying what is wrong with it."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"{expression!r} has {len(fields)} fields; a schedule has 5: "
            "minute hour day-of-month month day-of-week (e.g. '0 22 * * 1-5')"
        )
    minute, hour, day, month, weekday = fields
    if day not in _ANY and weekday not in _ANY:
        raise ValueError(
            f"{expression!r}: restrict the day of month or the day of week, not both (cron "
            "would fire when either matches)"
        )
    where = zone(time_zone)
    values = {
        "minute": minute,
        "hour": hour,
        "day": "*" if day in _ANY else day,
        "month": month,
        "day_of_week": weekday,
    }
    for name, value in values.items():
        try:
            if name == "day_of_week":
                value = values[name] = _day_of_week(value)
            CronTrigger(**{name: value}, timezone=UTC)
        except (ValueError, TypeError) as exc:
            said = re.sub(r"^Error validating expression '[^']*': ", "", str(exc))
            raise ValueError(f"{expression!r}: {name.replace('_', ' ')} {value!r}: {said}") from exc
    return Cron(" ".join(fields), time_zone, CronTrigger(**values, timezone=where))
