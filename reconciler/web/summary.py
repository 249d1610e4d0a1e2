"""The top of the status page: the hero (the headline, its reason and the pass times) and the
cards (desired and applied revisions, the source, the conditions)."""

from __future__ import annotations

from datetime import datetime

from reconciler.web.headline import headline
from reconciler.web.html import Html, join, tag, when
from reconciler.web.pieces import Doc, badge, cond_badge, revision
from reconciler.web.settings import Site
from reconciler.web.windows import window_fact, windows_card


def hero(data: Doc, site: Site, now: datetime) -> Html:
    head = headline(data)
    since = tag("span", "since ", when(head.since, now), class_="muted") if head.since else ""
    facts = [
        tag("span", "last pass ", when(data.get("last_pass_at"), now)),
        tag("span", "next ", when(data.get("next_pass_at"), now)),
        tag("span", "last success ", when(data.get("last_success_at"), now)),
    ]
    if site.dry_run:
        facts.append(badge("dry run", "warn"))
    if not site.self_heal:
        facts.append(badge("self-heal off", "idle"))
    facts.append(window_fact(data, now))
    lease = data.get("lease") or {}
    if lease.get("holding"):
        facts.append(
            tag("span", f"acting on {lease.get('my_node')} (lease term {lease.get('term')})")
        )
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


def _applied_note(desired: Doc | None, applied: Doc | None) -> Html | str:
    same = bool(desired and applied and desired.get("sha") == applied.get("sha"))
    return badge("= desired", "ok") if same else badge("behind desired", "warn") if applied else ""


def _source(site: Site) -> Html:
    repo = site.repo
    return tag(
        "dl",
        tag("dt", "Repository"),
        tag(
            "dd",
            tag(
                "a",
                repo.web_url.removeprefix("https://"),
                href=repo.web_url,
                title=repo.display_url,
            )
            if repo.web_url
            else tag("code", repo.display_url),
        ),
        tag("dt", "Branch"),
        tag("dd", tag("code", site.branch)),
        tag("dt", "Folder"),
        tag("dd", tag("code", site.path)),
        class_="source",
    )


def _raw(cond: Doc) -> Html | str:
    """The raw error behind a condition (docker's or git's own words, masked), folded."""
    detail = cond.get("detail")
    if not detail:
        return ""
    return tag("details", tag("summary", "raw error"), tag("pre", detail), class_="raw")


def _conditions(data: Doc) -> Html:
    items = [
        tag(
            "li",
            tag("span", cond.get("type", ""), class_="cond-type"),
            cond_badge(cond),
            tag(
                "span",
                cond.get("reason", ""),
                class_="muted small cond-reason",
                title=cond.get("message"),
            ),
            _raw(cond),
        )
        for cond in data.get("conditions") or ()
    ]
    if not items:
        return tag("p", "none yet", class_="muted")
    return tag("ul", join(items), class_="conditions")


def cards(data: Doc, site: Site, now: datetime, *, can_act: bool = False) -> Html:
    desired = data.get("desired")
    applied = data.get("last_applied")
    return tag(
        "section",
        tag(
            "div",
            tag("h3", "Desired"),
            revision(site, desired, now, "not fetched yet"),
            class_="card",
            id="desired",
        ),
        tag(
            "div",
            tag("h3", "Applied ", _applied_note(desired, applied)),
            revision(site, applied, now, "nothing applied yet"),
            class_="card",
            id="applied",
        ),
        tag("div", tag("h3", "Source"), _source(site), class_="card"),
        tag("div", tag("h3", "Conditions"), _conditions(data), class_="card"),
        windows_card(data, site, now, can_act),
        _promotion(data, site, now),
        class_="cards",
    )


def _promotion(data: Doc, site: Site, now: datetime) -> Html | str:
    """The last revision proposed to the next environment (``promote.path``), and where."""
    record = data.get("promotion")
    if not record:
        return ""
    url, branch = str(record.get("url") or ""), str(record.get("branch") or "")
    where: Html | str = "nothing to change there"
    if url:
        where = tag("a", "pull request", href=url)
    elif branch:
        where = tag("span", f"branch {branch}: merge it to promote")
    return tag(
        "div",
        tag("h3", "Promoted"),
        revision(site, record.get("revision"), now, ""),
        tag("div", where, class_="small"),
        class_="card",
        id="promotion",
    )
