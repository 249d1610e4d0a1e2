"""Sync windows (Argo CD's): times when applying changes is allowed or denied (pure).

A window is a kind (``allow`` or ``deny``), a cron schedule in a time zone and a duration: each
time the schedule fires, the window is active for the duration. The verdict at a moment:

* no window at all: applying is allowed;
* a ``deny`` window that is active blocks, whatever else is active (deny wins over allow);
* when any ``allow`` window exists, applying is allowed only while one of them is active.

Outside a window a pass still fetches, renders, plans and reports; it only does not apply
(``reconciler.decisions.hold``). The schedule is anything with ``next_fire`` (``reconciler.cron``
parses cron lines), so this module never reads a clock: the caller says when ``now`` is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from reconciler.serialize import format_time
from reconciler.units import format_duration_ns

#: how many window starts and ends the verdict looks at to find when it changes (windows that
#: overlap without end, such as an hourly one of two hours, have no "until" to show)
_LOOKAHEAD_STEPS = 200


class WindowKind(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Schedule(Protocol):
    @property
    def expression(self) -> str: ...

    def next_fire(self, after: datetime) -> datetime | None:
        """The first time the schedule fires strictly after ``after``."""
        ...


@dataclass(frozen=True)
class SyncWindow:
    kind: WindowKind
    schedule: Schedule
    duration: float  # seconds, > 0
    time_zone: str = "UTC"
    reason: str = ""

    @property
    def length(self) -> timedelta:
        return timedelta(seconds=self.duration)

    @property
    def duration_text(self) -> str:
        """``60h``, ``1h30m``."""
        return format_duration_ns(int(self.duration * 1e9))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "schedule": self.schedule.expression,
            "duration": self.duration_text,
            "duration_seconds": self.duration,
            "time_zone": self.time_zone,
            "reason": self.reason,
        }


def occurrence_end(window: SyncWindow, now: datetime) -> datetime | None:
    """The end of the window's earliest occurrence that is active at ``now``, or None when none
    is. An occurrence is active from its fire time for the duration, the end excluded."""
    start = window.schedule.next_fire(now - window.length)
    if start is None or start > now:
        return None
    return start + window.length


def is_open(windows: Sequence[SyncWindow], now: datetime) -> bool:
    """May changes be applied at ``now``: no deny window active, and an allow window active
    when there are any."""
    active = [w for w in windows if occurrence_end(w, now) is not None]
    if any(w.kind is WindowKind.DENY for w in active):
        return False
    allows = any(w.kind is WindowKind.ALLOW for w in windows)
    return not allows or any(w.kind is WindowKind.ALLOW for w in active)


def _next_change(windows: Sequence[SyncWindow], now: datetime, opened: bool) -> datetime | None:
    """The first moment after ``now`` at which the verdict is not ``opened`` (None: not within
    the look-ahead). It can change only where an occurrence starts or ends, so the moments
    looked at are the next of those, one after the other."""
    moment = now
    for _ in range(_LOOKAHEAD_STEPS):
        candidates = []
        for window in windows:
            end = occurrence_end(window, moment)
            start = window.schedule.next_fire(moment)
            candidates += [t for t in (end, start) if t is not None]
        if not candidates:
            return None
        moment = min(candidates)
        if is_open(windows, moment) != opened:
            return moment
    return None


@dataclass(frozen=True)
class Verdict:
    """May changes be applied at a moment, which window says so, and until when."""

    open: bool
    #: the window that decides: the active deny window (closed), the active allow window
    #: (open); None when no window is active
    window: SyncWindow | None = None
    #: when the verdict changes (None: never, or not within the look-ahead)
    until: datetime | None = None
    #: any windows configured at all
    windows: bool = False

    @property
    def message(self) -> str:
        """The verdict in words, for the history, the status page and the alert."""
        if not self.windows:
            return "no sync windows: changes are applied at any time"
        if self.open:
            why = (
                f"allow window {_quoted(self.window)} is active"
                if self.window
                else "no deny window is active"
            )
            return why + (f"; changes are applied until {_when(self.until)}" if self.until else "")
        again = f"; changes are applied again from {_when(self.until)}" if self.until else ""
        if self.window is not None:
            return f"deny window {_quoted(self.window)} is active{again}"
        return f"outside every allow window{again}"


def _quoted(window: SyncWindow | None) -> str:
    if window is None:
        return ""
    about = f"{window.time_zone}, {window.reason}" if window.reason else window.time_zone
    return f"'{window.schedule.expression}' ({about})"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def verdict(windows: Sequence[SyncWindow], now: datetime) -> Verdict:
    """The verdict at ``now`` (an aware datetime)."""
    if not windows:
        return Verdict(True)
    opened = is_open(windows, now)
    kind = WindowKind.ALLOW if opened else WindowKind.DENY
    deciding = next(
        (w for w in windows if w.kind is kind and occurrence_end(w, now) is not None), None
    )
    return Verdict(opened, deciding, _next_change(windows, now, opened), windows=True)


def report(windows: Sequence[SyncWindow], now: datetime) -> dict[str, Any]:
    """The windows and their verdict at ``now``, JSON-able (``/api/status``'s ``sync_windows``,
    ``reconciler status --json``)."""
    seen = verdict(windows, now)
    return {
        "open": seen.open,
        "message": seen.message,
        "until": format_time(seen.until) if seen.until else None,
        "window": seen.window.to_dict() if seen.window else None,
        "windows": [w.to_dict() for w in windows],
        "at": format_time(now),
    }
