"""The one line a person on call reads first (the page's hero, its title and its favicon), judged
from the status document's conditions, phase, pause and the changes held by a sync window."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.web.pieces import Doc
from reconciler.web.settings import Site

_BAD_RESULTS = {"failed", "rolled_back", "error", "refused"}


@dataclass(frozen=True)
class Headline:
    label: str
    tone: str  # ok | busy | warn | bad | idle
    reason: str
    message: str
    since: str | None = None  # ISO time of the condition's last transition


def _cond(data: Doc, type_: str) -> Doc | None:
    for cond in data.get("conditions") or ():
        if cond.get("type") == type_:
            return dict(cond)
    return None


def _standby(data: Doc) -> Headline | None:
    """Another agent holds the lease (``state.store: swarm``): this one waits."""
    lease = data.get("lease") or {}
    if not lease or lease.get("holding"):
        return None
    return Headline(
        "Standby",
        "idle",
        "Standby",
        f"this agent ({lease.get('me', '')}) waits: {lease.get('why', '')}; "
        "the status below is the acting agent's",
    )


def headline(data: Doc) -> Headline:
    """The one line a person on call reads first."""
    ready = _cond(data, "Ready")
    stalled = _cond(data, "Stalled")
    standby = _standby(data)
    if standby is not None:
        return standby
    if stalled and stalled.get("status") is True:
        return Headline(
            "Stalled",
            "bad",
            stalled.get("reason", ""),
            stalled.get("message") or "needs a human",
            stalled.get("last_transition"),
        )
    if data.get("phase"):
        return Headline(
            "Reconciling",
            "busy",
            f"phase {data['phase']}",
            data.get("progress") or "",
            (_cond(data, "Reconciling") or {}).get("last_transition"),
        )
    if data.get("paused"):
        return Headline(
            "Paused",
            "warn",
            "Suspended",
            data.get("paused_reason") or "applying is suspended; changes are reported, not applied",
        )
    if ready and ready.get("status") is False and ready.get("reason") == "OutsideSyncWindow":
        return Headline(
            "Outside sync window",
            "warn",
            "OutsideSyncWindow",
            ready.get("message") or "changes are planned and shown, not applied",
            ready.get("last_transition"),
        )
    if ready and ready.get("status") is True:
        return Headline(
            "Ready",
            "ok",
            ready.get("reason", ""),
            ready.get("message", ""),
            ready.get("last_transition"),
        )
    if ready and ready.get("status") is False:
        waiting = ready.get("reason") == "RevertProposed"  # live is fine; git waits for a merge
        tone = "bad" if data.get("last_result") in _BAD_RESULTS and not waiting else "warn"
        return Headline(
            "Revert proposed" if waiting else "Not ready",
            tone,
            ready.get("reason", ""),
            ready.get("message", ""),
            ready.get("last_transition"),
        )
    return Headline("Starting", "idle", "", "waiting for the first pass")


def page_title(data: Doc, site: Site) -> str:
    head = headline(data)
    mark = {"ok": "✓", "busy": "↻", "warn": "!", "bad": "✗", "idle": "…"}[head.tone]
    return f"{mark} {head.label} · {site.stack} ({site.environment})"
