"""The status page, rendered on the server from the (already masked) status document.

``render_page`` returns the whole document; ``render_content`` only ``<main>``, which the page
script fetches (``GET /?part=content``) and swaps in every few seconds, so the page stays current
without reloading, keeps its scroll position, and still works with JavaScript off (a
``<noscript>`` meta refresh and plain HTML forms).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.web.html import Html, duration, join, tag, when
from reconciler.web.settings import Site

Doc = Mapping[str, Any]

_BAD_RESULTS = {"failed", "rolled_back", "error", "refused"}
_RESULT_TONE = {
    "success": "ok",
    "noop": "idle",
    "refused": "warn",
    "rolled_back": "bad",
    "failed": "bad",
    "error": "bad",
}


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


def headline(data: Doc) -> Headline:
    """The one line a person on call reads first."""
    ready = _cond(data, "Ready")
    stalled = _cond(data, "Stalled")
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
    if ready and ready.get("status") is True:
        return Headline(
            "Ready",
            "ok",
            ready.get("reason", ""),
            ready.get("message", ""),
            ready.get("last_transition"),
        )
    if ready and ready.get("status") is False:
        tone = "bad" if data.get("last_result") in _BAD_RESULTS else "warn"
        return Headline(
            "Not ready",
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


# ---------------------------------------------------------------- pieces


def _badge(text: str, tone: str) -> Html:
    return tag("span", text, class_=f"badge {tone}")


def _bool_badge(value: object, yes: str, no: str, unknown: str = "unknown") -> Html:
    if value is True:
        return _badge(yes, "ok")
    if value is False:
        return _badge(no, "bad")
    return _badge(unknown, "idle")


def _cond_badge(cond: Doc) -> Html:
    value, type_ = cond.get("status"), cond.get("type")
    if value is None:
        return _badge("unknown", "idle")
    if type_ == "Stalled":
        return _badge("yes", "bad") if value else _badge("no", "ok")
    if type_ == "Reconciling":
        return _badge("yes", "busy") if value else _badge("no", "idle")
    return _badge("yes", "ok") if value else _badge("no", "bad")


def _sha(site: Site, rev: Doc | None) -> Html:
    if not rev or not rev.get("sha"):
        return Html("\u2013")
    sha = str(rev["sha"])
    url = site.repo.commit(sha)
    code = tag("code", sha[:12])
    return tag("a", code, href=url, class_="sha", title=sha) if url else code


def _revision(site: Site, rev: Doc | None, now: datetime, empty: str) -> Html:
    if not rev:
        return tag("p", empty, class_="muted")
    meta = []
    if rev.get("author"):
        author = str(rev["author"])
        meta.append(tag("span", author.split(" <", 1)[0], title=author))
    if rev.get("committed_at"):
        meta.append(when(rev["committed_at"], now))
    return join(
        [
            tag(
                "div", _sha(site, rev), " ", tag("span", rev.get("subject") or "", class_="subject")
            ),
            tag("div", join(meta, " · "), class_="muted small"),
        ]
    )


def _short_image(image: object) -> Html:
    """``registry/name:tag@sha256:…`` shows name:tag, the whole reference in the title."""
    if not image:
        return Html("\u2013")
    text = str(image)
    shown = text.split("@", 1)[0]
    if "/" in shown:
        shown = shown.rsplit("/", 1)[1]
    return tag("span", shown, title=text, class_="image")


def _no_digest(image: object) -> str:
    return str(image or "").split("@", 1)[0]


def _hero(data: Doc, site: Site, now: datetime) -> Html:
    head = headline(data)
    since = tag("span", "since ", when(head.since, now), class_="muted") if head.since else ""
    facts = [
        tag("span", "last pass ", when(data.get("last_pass_at"), now)),
        tag("span", "next ", when(data.get("next_pass_at"), now)),
        tag("span", "last success ", when(data.get("last_success_at"), now)),
    ]
    if site.dry_run:
        facts.append(_badge("dry run", "warn"))
    if not site.self_heal:
        facts.append(_badge("self-heal off", "idle"))
    return tag(
        "section",
        tag(
            "div",
            tag("span", head.label, class_="state-label", id="state-label"),
            tag("span", head.reason, class_="reason") if head.reason else "",
            since,
            class_="state-line",
        ),
        tag("p", head.message, class_="state-message") if head.message else "",
        tag("div", join(facts), class_="facts"),
        class_=f"hero tone-{head.tone}",
        data_tone=head.tone,
        id="hero",
    )


def _cards(data: Doc, site: Site, now: datetime) -> Html:
    desired = data.get("desired")
    applied = data.get("last_applied")
    same = bool(desired and applied and desired.get("sha") == applied.get("sha"))
    applied_note = (
        _badge("= desired", "ok") if same else _badge("behind desired", "warn") if applied else ""
    )
    conditions = [
        tag(
            "li",
            tag("span", cond.get("type", ""), class_="cond-type"),
            _cond_badge(cond),
            tag("span", cond.get("reason", ""), class_="muted small", title=cond.get("message")),
        )
        for cond in data.get("conditions") or ()
    ]
    source = tag(
        "dl",
        tag("dt", "Repository"),
        tag(
            "dd",
            tag(
                "a",
                site.repo.web_url.removeprefix("https://"),
                href=site.repo.web_url,
                title=site.repo.display_url,
            )
            if site.repo.web_url
            else tag("code", site.repo.display_url),
        ),
        tag("dt", "Branch"),
        tag("dd", tag("code", site.branch)),
        tag("dt", "Folder"),
        tag("dd", tag("code", site.path)),
        class_="source",
    )
    return tag(
        "section",
        tag(
            "div",
            tag("h3", "Desired"),
            _revision(site, desired, now, "not fetched yet"),
            class_="card",
            id="desired",
        ),
        tag(
            "div",
            tag("h3", "Applied ", applied_note),
            _revision(site, applied, now, "nothing applied yet"),
            class_="card",
            id="applied",
        ),
        tag("div", tag("h3", "Source"), source, class_="card"),
        tag(
            "div",
            tag("h3", "Conditions"),
            tag("ul", join(conditions), class_="conditions")
            if conditions
            else tag("p", "none yet", class_="muted"),
            class_="card",
        ),
        class_="cards",
    )


def _drift(service: Doc) -> Html:
    diffs = service.get("drift") or ()
    if not diffs:
        return Html("")
    rows = [
        tag(
            "li",
            tag("code", d.get("field", "")),
            ": ",
            tag("span", d.get("live") if d.get("live") is not None else "∅", class_="live"),
            " → ",
            tag("span", d.get("desired") if d.get("desired") is not None else "∅", class_="want"),
        )
        for d in diffs
    ]
    return tag(
        "details",
        tag("summary", f"{len(diffs)} difference(s)"),
        tag("ul", join(rows)),
        class_="drift",
    )


def _services(data: Doc) -> Html:
    inventory: Sequence[Doc] = data.get("inventory") or ()
    out_of_sync = sum(1 for s in inventory if not s.get("in_sync"))
    head = tag(
        "tr",
        *(
            tag("th", h)
            for h in (
                "Service",
                "Desired image",
                "Running image",
                "Replicas",
                "Healthy",
                "In sync",
                "Last check",
            )
        ),
    )
    rows = []
    for svc in inventory:
        want, got = int(svc.get("replicas_desired") or 0), int(svc.get("replicas_running") or 0)
        check = svc.get("last_check") or {}
        check_text = ""
        if check:
            code = f" HTTP {check['status_code']}" if check.get("status_code") else ""
            check_text = tag(
                "span",
                ("ok" if check.get("ok") else "failed") + code,
                class_="ok-text" if check.get("ok") else "bad-text",
                title=check.get("output") or check.get("url") or "",
            )
        image_differs = _no_digest(svc.get("image")) != _no_digest(svc.get("live_image"))
        action = svc.get("action") or "unchanged"
        rows.append(
            tag(
                "tr",
                tag(
                    "td",
                    tag("strong", svc.get("name", "")),
                    tag("span", action, class_="badge idle action")
                    if action != "unchanged"
                    else "",
                ),
                tag("td", _short_image(svc.get("image"))),
                tag(
                    "td",
                    _short_image(svc.get("live_image")),
                    class_="differs" if image_differs else None,
                ),
                tag(
                    "td",
                    tag(
                        "meter",
                        value=got,
                        min=0,
                        max=max(want, 1),
                        low=max(want, 1) - 0.5,
                        high=max(want, 1) - 0.25,
                        optimum=max(want, 1),
                        title=f"{got} of {want}",
                    ),
                    f" {got}/{want}",
                    class_="replicas",
                ),
                tag("td", _bool_badge(svc.get("healthy"), "healthy", "unhealthy")),
                tag("td", _bool_badge(svc.get("in_sync"), "in sync", "out of sync"), _drift(svc)),
                tag("td", check_text),
                class_=None if svc.get("in_sync") else "row-warn",
                data_service=svc.get("name"),
            )
        )
    summary = f"{len(inventory)} service(s)" + (
        f", {out_of_sync} out of sync" if out_of_sync else ""
    )
    body = (
        tag("table", tag("thead", head), tag("tbody", join(rows)), class_="grid", id="services")
        if rows
        else tag("p", "No services yet: the first pass has not planned anything.", class_="muted")
    )
    return tag(
        "section",
        tag("h2", "Services ", tag("span", summary, class_="muted small")),
        tag("div", body, class_="scroll"),
    )


def _history(data: Doc, site: Site, now: datetime, limit: int = 15) -> Html:
    history: Sequence[Doc] = data.get("history") or ()
    head = tag(
        "tr",
        *(
            tag("th", h)
            for h in ("When", "Revision", "Result", "Duration", "Trigger", "Reason", "Services")
        ),
    )
    rows = []
    for entry in history[:limit]:
        result = str(entry.get("result", ""))
        rows.append(
            tag(
                "tr",
                tag("td", when(entry.get("finished_at") or entry.get("started_at"), now)),
                tag("td", _sha(site, entry.get("revision"))),
                tag(
                    "td",
                    _badge(result.replace("_", " "), _RESULT_TONE.get(result, "idle")),
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
        tag("p", tag("a", f"all {len(history)} passes as JSON", href="api/history"), class_="small")
        if len(history) > limit
        else ""
    )
    body = (
        tag("table", tag("thead", head), tag("tbody", join(rows)), class_="grid", id="history")
        if rows
        else tag("p", "No pass has run yet.", class_="muted")
    )
    return tag("section", tag("h2", "Recent passes"), tag("div", body, class_="scroll"), more)


def _quarantine(data: Doc, site: Site, now: datetime, can_act: bool) -> Html:
    entries: Sequence[Doc] = data.get("quarantine") or ()
    if not entries:
        items = tag("p", "None.", class_="muted")
    else:
        lis = []
        for q in entries:
            sha = (q.get("revision") or {}).get("sha", "")
            release = (
                tag(
                    "form",
                    tag("button", "Release", type="submit", class_="small-btn"),
                    method="post",
                    action=f"api/quarantine/{sha}/release",
                    data_api=f"api/quarantine/{sha}/release",
                    data_confirm=f"Allow {sha[:12]} to be applied again?",
                    class_="inline",
                )
                if can_act
                else ""
            )
            lis.append(
                tag(
                    "li",
                    _sha(site, q.get("revision")),
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


def _reverts(data: Doc, site: Site, now: datetime) -> Html:
    entries: Sequence[Doc] = data.get("reverts") or ()
    if not entries:
        items = tag("p", "None.", class_="muted")
    else:
        lis = [
            tag(
                "li",
                _sha(site, {"sha": r.get("commit")}),
                " reverts ",
                _sha(site, r.get("revision")),
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


def render_content(data: Doc, site: Site, now: datetime, *, can_act: bool) -> Html:
    return tag(
        "main",
        _hero(data, site, now),
        _cards(data, site, now),
        _services(data),
        _history(data, site, now),
        tag(
            "section",
            _quarantine(data, site, now, can_act),
            _reverts(data, site, now),
            class_="split",
        ),
        id="content",
        data_title=page_title(data, site),
        data_tone=headline(data).tone,
        data_paused="true" if data.get("paused") else "false",
    )


def _actions(data: Doc, can_act: bool) -> Html:
    if not can_act:
        return tag(
            "div",
            tag("span", "read-only: no API token configured", class_="muted small"),
            class_="actions",
        )
    paused = bool(data.get("paused"))
    pause_api = "api/resume" if paused else "api/pause"
    # one form, one token field: each button posts to its own route (formaction), so the
    # actions work with JavaScript off too; with it, the page script sends the same requests
    # with an Authorization header and remembers the token
    form = tag(
        "form",
        tag(
            "label",
            tag("span", "API token", class_="sr-only"),
            tag(
                "input",
                type="password",
                name="token",
                placeholder="API token",
                autocomplete="off",
                id="token",
            ),
            class_="token-field",
            id="token-field",
        ),
        tag(
            "button",
            "Sync now",
            type="submit",
            class_="primary",
            id="sync-now",
            formaction="api/sync",
            data_api="api/sync",
        ),
        tag(
            "button",
            "Resume" if paused else "Pause",
            type="submit",
            id="pause-resume",
            formaction=pause_api,
            data_api=pause_api,
            data_confirm=None if paused else "Pause applying? Passes keep fetching and reporting.",
        ),
        method="post",
        action="api/sync",
        id="actions-form",
        data_api="api/sync",
    )
    return tag(
        "div",
        form,
        tag("button", "Forget token", type="button", id="forget-token", class_="link", hidden=True),
        tag("span", "", id="action-result", class_="small", role="status"),
        class_="actions",
    )


def render_page(
    data: Doc,
    site: Site,
    now: datetime,
    *,
    refresh: float,
    can_act: bool,
    version: str,
) -> str:
    head = headline(data)
    refresh_s = max(1, int(refresh))
    document = tag(
        "html",
        tag(
            "head",
            tag("meta", charset="utf-8"),
            tag("meta", name="viewport", content="width=device-width, initial-scale=1"),
            tag("title", page_title(data, site)),
            tag("link", rel="stylesheet", href="static/style.css"),
            tag("link", rel="icon", href=f"static/icon-{head.tone}.svg", id="favicon"),
            Html(f'<noscript><meta http-equiv="refresh" content="{refresh_s * 3}"></noscript>'),
            tag("script", src="static/app.js", defer=True),
        ),
        tag(
            "body",
            tag(
                "header",
                tag(
                    "div",
                    tag("span", "Driftless", class_="logo"),
                    tag("span", site.stack, class_="stack"),
                    tag("span", site.environment, class_="env"),
                    class_="brand",
                ),
                _actions(data, can_act),
                class_="top",
            ),
            render_content(data, site, now, can_act=can_act),
            tag(
                "footer",
                tag("span", f"reconciler {version}"),
                tag("span", "updated ", tag("span", when(now.isoformat(), now), id="updated")),
                tag("span", tag("span", "", id="conn", class_="conn")),
                tag("a", "status JSON", href="api/status"),
                tag("a", "history JSON", href="api/history"),
                tag("a", "metrics", href="metrics"),
                tag("a", "healthz", href="healthz"),
            ),
            data_refresh=refresh_s,
        ),
        lang="en",
    )
    return "<!doctype html>\n" + document
