"""The small pieces the status page's sections share: badges, linked commit SHAs, a revision's
line, an image reference cut to its name and tag."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from reconciler.web.html import Html, join, tag, when
from reconciler.web.settings import Site

Doc = Mapping[str, Any]


def badge(text: str, tone: str) -> Html:
    return tag("span", text, class_=f"badge {tone}")


def bool_badge(value: object, yes: str, no: str, unknown: str = "unknown") -> Html:
    if value is True:
        return badge(yes, "ok")
    if value is False:
        return badge(no, "bad")
    return badge(unknown, "idle")


def cond_badge(cond: Doc) -> Html:
    value, type_ = cond.get("status"), cond.get("type")
    if value is None:
        return badge("unknown", "idle")
    if type_ == "Stalled":
        return badge("yes", "bad") if value else badge("no", "ok")
    if type_ == "Reconciling":
        return badge("yes", "busy") if value else badge("no", "idle")
    return badge("yes", "ok") if value else badge("no", "bad")


def sha(site: Site, rev: Doc | None) -> Html:
    if not rev or not rev.get("sha"):
        return Html("\u2013")
    full = str(rev["sha"])
    url = site.repo.commit(full)
    code = tag("code", full[:12])
    return tag("a", code, href=url, class_="sha", title=full) if url else code


def revision(site: Site, rev: Doc | None, now: datetime, empty: str) -> Html:
    if not rev:
        return tag("p", empty, class_="muted")
    meta = []
    if rev.get("author"):
        author = str(rev["author"])
        meta.append(tag("span", author.split(" <", 1)[0], title=author))
    if rev.get("committed_at"):
        meta.append(when(rev["committed_at"], now))
    if rev.get("signed_by"):
        signer = str(rev["signed_by"])
        meta.append(tag("span", f"signed by {signer.split(' (key ', 1)[0]}", title=signer))
    return join(
        [
            tag(
                "div", sha(site, rev), " ", tag("span", rev.get("subject") or "", class_="subject")
            ),
            tag("div", join(meta, " · "), class_="muted small"),
        ]
    )


def short_image(image: object) -> Html:
    """``registry/name:tag@sha256:…`` shows name:tag, the whole reference in the title."""
    if not image:
        return Html("\u2013")
    text = str(image)
    shown = text.split("@", 1)[0]
    if "/" in shown:
        shown = shown.rsplit("/", 1)[1]
    return tag("span", shown, title=text, class_="image")


def no_digest(image: object) -> str:
    return str(image or "").split("@", 1)[0]
