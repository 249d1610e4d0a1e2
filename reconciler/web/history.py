"""What the agent did, as the status page lists it: the recent passes, the revisions it
quarantined (with a release button when the API is writable) and the reverts it pushed (or
proposed in a pull request, linked)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from reconciler.web.html import Html, duration, join, tag, when
from reconciler.web.pieces import Doc, badge, sha
from reconciler.web.settings import Site

_RESULT_TONE = {
    "success": "ok",
    "noop": "idle",
    "refused": "warn",
    "rolled_back": "bad",
    "failed": "bad",
    "error": "bad",
}


def history(data: Doc, site: Site, now: datetime, limit: int = 15) -> Html:
    entries: Sequence[Doc] = data.get("history") or ()
    head = tag(
        "tr",
        *(
            tag("th", h)
            for h in ("When", "Revision", "Result", "Duration", "Trigger", "Reason", "Services")
        ),
    )
    rows = []
    for entry in entries[:limit]:
        result = str(entry.get("result", ""))
        rows.append(
            tag(
                "tr",
                tag("td", when(entry.get("finished_at") or entry.get("started_at"), now)),
                tag("td", sha(site, entry.get("revision"))),
                tag(
                    "td",
                    badge(result.replace("_", " "), _RESULT_TONE.get(result, "idle")),
                    tag(
                        "span",
                        f" \u00d7{entry['count']}",
                        class_="muted small",
                        title=f"{entry['count']} passes in a row since",
                    )
                    if int(entry.get("count") or 1) > 1
                    else "",
                ),
                tag("td", duration(entry.get("duration_seconds"))),
                tag("td", entry.get("trigger", "")),
                tag(
                    "td",
                    tag("span", entry.get("reason", ""), class_="reason"),
                    tag("div", entry.get("message", ""), class_="muted small msg")
                    if entry.get("message")
                    else "",
                ),
                tag("td", ", ".join(entry.get("services") or ()) or "\u2013"),
                class_=f"result-{result}",
            )
        )
    more = (
        tag("p", tag("a", f"all {len(entries)} passes as JSON", href="api/history"), class_="small")
        if len(entries) > limit
        else ""
    )
    body = (
        tag("table", tag("thead", head), tag("tbody", join(rows)), class_="grid", id="history")
        if rows
        else tag("p", "No pass has run yet.", class_="muted")
    )
    return tag("section", tag("h2", "Recent passes"), tag("div", body, class_="scroll"), more)


def quarantine(data: Doc, site: Site, now: datetime, can_act: bool) -> Html:
    entries: Sequence[Doc] = data.get("quarantine") or ()
    if not entries:
        items = tag("p", "None.", class_="muted")
    else:
        lis = []
        for q in entries:
            full = (q.get("revision") or {}).get("sha", "")
            release = (
                tag(
                    "form",
                    tag("button", "Release", type="submit", class_="small-btn"),
                    method="post",
                    action=f"api/quarantine/{full}/release",
                    data_api=f"api/quarantine/{full}/release",
                    data_confirm=f"Allow {full[:12]} to be applied again?",
                    class_="inline",
                )
                if can_act
                else ""
            )
            lis.append(
                tag(
                    "li",
                    sha(site, q.get("revision")),
                    " ",
                    tag("span", (q.get("revision") or {}).get("subject", ""), class_="subject"),
                    tag(
                        "div",
                        tag("span", q.get("reason", ""), class_="reason"),
                        " ",
                        q.get("message", ""),
                        " · ",
                        when(q.get("quarantined_at"), now),
                        class_="muted small",
                    ),
                    release,
                )
            )
        items = tag("ul", join(lis), class_="entries")
    return tag("div", tag("h2", "Quarantined revisions"), items, class_="half", id="quarantine")


def _proposal(url: object) -> Html:
    """Where a revert waits, when the branch takes no direct pushes: its pull request."""
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return Html("")
    return join([" — proposed in ", tag("a", url, href=url, class_="proposal")])


def reverts(data: Doc, site: Site, now: datetime) -> Html:
    entries: Sequence[Doc] = data.get("reverts") or ()
    if not entries:
        items = tag("p", "None.", class_="muted")
    else:
        lis = [
            tag(
                "li",
                sha(site, {"sha": r.get("commit")}),
                " reverts ",
                sha(site, r.get("revision")),
                _proposal(r.get("proposal")),
                " ",
                tag("span", (r.get("revision") or {}).get("subject", ""), class_="subject"),
                tag(
                    "div",
                    tag("span", r.get("reason", ""), class_="reason"),
                    " ",
                    r.get("message", ""),
                    " · ",
                    when(r.get("pushed_at"), now),
                    class_="muted small",
                ),
            )
            for r in entries[:10]
        ]
        items = tag("ul", join(lis), class_="entries")
    return tag("div", tag("h2", "Reverts pushed"), items, class_="half", id="reverts")
