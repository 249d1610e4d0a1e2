"""The environments side by side (``http.environments``): this agent's and the other agents'
(one per environment, each with its own page), read from their ``/api/status`` when the page is
served: the revision each runs, its state and its images, each linking to its own page."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp

from reconciler.web.html import Html, join, tag
from reconciler.web.pieces import Doc, badge, short_image

#: a page is never held up by another environment's agent for longer than this
PEER_TIMEOUT = 2.0


def summary(data: Doc) -> Doc:
    """What the side-by-side view shows of one environment's status document."""
    applied = data.get("last_applied") or {}
    conditions: list[Doc] = data.get("conditions") or []
    ready: Doc = next((c for c in conditions if c.get("type") == "Ready"), {})
    images = {
        str(s.get("name")): f"{s.get('live_image')}@{s.get('live_digest')}"
        if s.get("live_digest")
        else str(s.get("live_image") or s.get("image") or "")
        for s in data.get("inventory") or []
    }
    return {
        "environment": data.get("environment", ""),
        "revision": applied.get("sha", ""),
        "subject": applied.get("subject", ""),
        "ready": ready.get("status"),
        "reason": ready.get("reason", ""),
        "images": images,
    }


async def _peer(session: aiohttp.ClientSession, name: str, url: str) -> Doc:
    try:
        async with session.get(url.rstrip("/") + "/api/status") as response:
            if response.status != 200:
                return {"environment": name, "url": url, "error": f"HTTP {response.status}"}
            found = summary(await response.json())
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return {"environment": name, "url": url, "error": type(exc).__name__}
    return {**found, "environment": name, "url": url}


async def peers(environments: Mapping[str, str]) -> list[Doc]:
    """The other environments' summaries (an unreachable one says so), at most PEER_TIMEOUT;
    entries without a URL are ignored."""
    environments = {name: url for name, url in environments.items() if url}
    if not environments:
        return []
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        return list(
            await asyncio.gather(*(_peer(session, n, u) for n, u in sorted(environments.items())))
        )


def _row(env: Doc, here: bool) -> Html:
    name = str(env.get("environment", ""))
    label: Any = tag("strong", name) if here else tag("a", name, href=env.get("url", ""))
    if env.get("error"):
        state = badge(f"unreachable ({env['error']})", "bad")
    elif env.get("ready"):
        state = badge("Ready", "ok")
    else:
        state = badge(str(env.get("reason") or "not ready"), "warn")
    images = join(
        [
            tag("div", f"{svc}: ", short_image(ref))
            for svc, ref in sorted((env.get("images") or {}).items())
        ]
    )
    revision = str(env.get("revision") or "")
    return tag(
        "tr",
        tag("td", label),
        tag(
            "td", tag("code", revision[:12]) if revision else "\u2013", " ", env.get("subject", "")
        ),
        tag("td", state),
        tag("td", images),
    )


def environments(data: Doc) -> Html:
    """The section, when other environments are configured (``data["peers"]``)."""
    others: list[Doc] = data.get("peers") or []
    if not others:
        return Html("")
    rows = [_row(summary(data), True), *(_row(p, False) for p in others)]
    head = tag("tr", *(tag("th", h) for h in ("Environment", "Revision", "State", "Images")))
    return tag(
        "section",
        tag("h2", "Environments"),
        tag(
            "table", tag("thead", head), tag("tbody", join(rows)), class_="grid", id="environments"
        ),
    )
