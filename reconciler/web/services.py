"""The status page's services table: one row per managed service with its desired and running
image, replicas, health, sync state (and the drift, field by field) and last check."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.web.html import Html, join, tag
from reconciler.web.pieces import Doc, bool_badge, no_digest, short_image

_COLUMNS = (
    "Service",
    "Desired image",
    "Running image",
    "Replicas",
    "Healthy",
    "In sync",
    "Last check",
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


def _check(check: Doc) -> Html | str:
    if not check:
        return ""
    code = f" HTTP {check['status_code']}" if check.get("status_code") else ""
    return tag(
        "span",
        ("ok" if check.get("ok") else "failed") + code,
        class_="ok-text" if check.get("ok") else "bad-text",
        title=check.get("output") or check.get("url") or "",
    )


def _replicas(want: int, got: int) -> Html:
    return tag(
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
    )


def _digest(digest: object) -> Html:
    """The digest a service runs, shortened (whole in the title)."""
    if not digest:
        return Html("")
    text = str(digest)
    return tag("div", tag("code", text[:19]), class_="small muted digest", title=text)


def _row(svc: Doc) -> Html:
    want, got = int(svc.get("replicas_desired") or 0), int(svc.get("replicas_running") or 0)
    check = _check(svc.get("last_check") or {})
    image_differs = no_digest(svc.get("image")) != no_digest(svc.get("live_image"))
    action = svc.get("action") or "unchanged"
    return tag(
        "tr",
        tag(
            "td",
            tag("strong", svc.get("name", "")),
            tag("span", action, class_="badge idle action") if action != "unchanged" else "",
        ),
        tag("td", short_image(svc.get("image"))),
        tag(
            "td",
            short_image(svc.get("live_image")),
            _digest(svc.get("live_digest")),
            tag("div", str(svc["tag_moved"]), class_="small warn") if svc.get("tag_moved") else "",
            class_="differs" if image_differs else None,
        ),
        _replicas(want, got),
        tag("td", bool_badge(svc.get("healthy"), "healthy", "unhealthy")),
        tag("td", bool_badge(svc.get("in_sync"), "in sync", "out of sync"), _drift(svc)),
        tag("td", check),
        class_=None if svc.get("in_sync") else "row-warn",
        data_service=svc.get("name"),
    )


def services(data: Doc) -> Html:
    inventory: Sequence[Doc] = data.get("inventory") or ()
    out_of_sync = sum(1 for s in inventory if not s.get("in_sync"))
    head = tag("tr", *(tag("th", h) for h in _COLUMNS))
    rows = [_row(svc) for svc in inventory]
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
