"""A very small HTML builder: every value is escaped unless it is already ``Html``.

The page is rendered on the server from plain strings, so there is no template engine and no
JavaScript framework; escaping is the one rule that keeps it safe, and this module enforces it.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import UTC, datetime


class Html(str):
    """A string that is already HTML (built by this module)."""

    __slots__ = ()


def esc(value: object) -> Html:
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[object], sep: str = "") -> Html:
    return Html(esc(sep).join(esc(p) for p in parts))


def tag(name: str, /, *children: object, **attrs: object) -> Html:
    """``tag("a", "x", href=url, class_="y")``; ``True`` attributes render bare, ``None``/False
    ones are left out; a trailing underscore is dropped and other underscores become dashes."""
    rendered = []
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        attr = key.rstrip("_").replace("_", "-")
        rendered.append(f" {attr}" if value is True else f' {attr}="{esc(value)}"')
    if name in ("meta", "link", "input", "br", "img"):
        return Html(f"<{name}{''.join(rendered)}>")
    return Html(f"<{name}{''.join(rendered)}>{join(children)}</{name}>")


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def ago(seconds: float) -> str:
    """``42s``, ``5m``, ``3h 10m``, ``2d 4h`` (for ages and durations)."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "\u2013"
    if seconds < 10:
        return f"{seconds:.1f}s"
    return ago(seconds)


def when(value: object, now: datetime) -> Html:
    """A ``<time>`` element: relative text (``5m ago`` / ``in 40s``), absolute UTC in the title;
    the page script keeps the relative text current."""
    at = parse_time(value)
    if at is None:
        return Html("\u2013")
    delta = (now - at).total_seconds()
    text = f"{ago(delta)} ago" if delta >= 0 else f"in {ago(delta)}"
    if -1 < delta < 1:
        text = "just now"
    iso = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    title = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return tag("time", text, datetime=iso, title=title, data_rel=True)
