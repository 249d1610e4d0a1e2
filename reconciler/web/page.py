"""The status page, rendered on the server from the (already masked) status document.

``render_page`` returns the whole document; ``render_content`` only ``<main>``, which the page
script fetches (``GET /?part=content``) and swaps in every few seconds, so the page stays current
without reloading, keeps its scroll position, and still works with JavaScript off (a
``<noscript>`` meta refresh and plain HTML forms).
"""

from __future__ import annotations

from datetime import datetime

from reconciler.web.environments import environments
from reconciler.web.headline import headline, page_title
from reconciler.web.history import history, quarantine, reverts
from reconciler.web.html import Html, tag, when
from reconciler.web.nodes import nodes
from reconciler.web.pieces import Doc
from reconciler.web.rollout import rollout
from reconciler.web.services import services
from reconciler.web.settings import Site
from reconciler.web.summary import cards, hero


def render_content(data: Doc, site: Site, now: datetime, *, can_act: bool) -> Html:
    return tag(
        "main",
        hero(data, site, now),
        environments(data),
        cards(data, site, now, can_act=can_act),
        rollout(data),
        services(data),
        nodes(data),
        history(data, site, now),
        tag(
            "section",
            quarantine(data, site, now, can_act),
            reverts(data, site, now),
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
