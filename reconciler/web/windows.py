"""The sync windows on the status page: whether changes are applied now and until when (a fact
in the hero), the windows themselves, the revision let through with "sync anyway", and the
"Sync anyway" button when the API is writable, from the status document's ``sync_windows``."""

from __future__ import annotations

from datetime import datetime

from reconciler.web.html import Html, join, tag, when
from reconciler.web.pieces import Doc, badge, sha
from reconciler.web.settings import Site


def window_fact(data: Doc, now: datetime) -> Html:
    """``sync window open until …`` / ``closed until …`` for the hero (nothing without windows)."""
    seen = data.get("sync_windows") or {}
    if not seen.get("windows"):
        return Html("")
    state = "open" if seen.get("open") else "closed"
    until = seen.get("until")
    return tag(
        "span",
        badge(f"sync window {state}", "ok" if seen.get("open") else "warn"),
        join([" until ", when(until, now)]) if until else "",
        id="window-fact",
        title=seen.get("message", ""),
    )


def _window(window: Doc) -> Html:
    kind = str(window.get("kind", ""))
    return tag(
        "li",
        badge(kind, "warn" if kind == "deny" else "ok"),
        " ",
        tag("code", window.get("schedule", "")),
        f" for {window.get('duration', '')} ({window.get('time_zone', 'UTC')})",
        tag("div", window.get("reason", ""), class_="muted small") if window.get("reason") else "",
    )


def _sync_anyway(data: Doc, site: Site, can_act: bool) -> Html | str:
    """Who is let through, or the button that lets the branch head through."""
    allowed = data.get("sync_anyway")
    head = data.get("desired") or {}
    if allowed:
        return tag(
            "p",
            "Sync anyway: ",
            sha(site, {"sha": allowed}),
            " may be applied outside the windows (this revision only).",
            class_="small",
            id="sync-anyway-granted",
        )
    if not can_act or (data.get("sync_windows") or {}).get("open") or not head.get("sha"):
        return ""
    full = str(head["sha"])
    return tag(
        "form",
        tag("input", type="hidden", name="revision", value=full),
        tag("button", f"Sync anyway ({full[:12]})", type="submit", class_="small-btn"),
        method="post",
        action="api/sync-anyway",
        data_api="api/sync-anyway",
        data_confirm=f"Apply {full[:12]} now, outside the sync windows? Only this revision "
        "is let through.",
        class_="inline",
        id="sync-anyway",
    )


def windows_card(data: Doc, site: Site, now: datetime, can_act: bool) -> Html | str:
    """The card of the sync windows (nothing when none are configured)."""
    seen = data.get("sync_windows") or {}
    windows = seen.get("windows") or ()
    if not windows:
        return ""
    is_open = bool(seen.get("open"))
    return tag(
        "div",
        tag(
            "h3",
            "Sync windows ",
            badge("open" if is_open else "closed", "ok" if is_open else "warn"),
        ),
        tag("p", seen.get("message", ""), class_="small", id="window-message"),
        tag("ul", join(_window(w) for w in windows), class_="entries"),
        _sync_anyway(data, site, can_act),
        class_="card",
        id="sync-windows",
        data_open="true" if is_open else "false",
    )
