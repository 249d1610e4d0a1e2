"""Each channel's payload for a :class:`~reconciler.notify.message.Message`, within its limits.

* **Slack** incoming webhook: ``text`` (the notification fallback) and Block Kit ``blocks``:
  a ``header`` (plain text, at most 150 characters), ``section`` blocks (``mrkdwn`` text at most
  3000 characters; ``fields`` at most 10, each at most 2000) and a ``context`` block (at most 10
  elements); at most 50 blocks. ``&``, ``<`` and ``>`` are escaped; links are ``<url|text>``.
* **Discord** execute-webhook: ``embeds`` (at most 10) with ``title`` ≤ 256, ``description``
  ≤ 4096, ``fields`` ≤ 25 (name ≤ 256, value ≤ 1024), ``footer.text`` ≤ 2048, and at most 6000
  characters over all of them; ``color`` is an integer, ``timestamp`` ISO 8601.
  ``allowed_mentions: {"parse": []}`` so that a commit subject can never ping ``@everyone``.
* **Generic webhook**: a documented, versioned JSON document (see the README).
"""

from __future__ import annotations

from typing import Any

from reconciler.notify.message import Message, truncate
from reconciler.serialize import format_time

SLACK_HEADER = 150
SLACK_TEXT = 3000
SLACK_FIELD = 2000
DISCORD_TITLE = 256
DISCORD_DESCRIPTION = 4096
DISCORD_FIELD_NAME = 256
DISCORD_FIELD_VALUE = 1024
DISCORD_FOOTER = 2048
DISCORD_TOTAL = 6000
DETAIL_LINES = 40  # long outputs keep their head: the first lines say what broke


def _clip_lines(text: str, lines: int = DETAIL_LINES) -> str:
    kept = text.splitlines()
    if len(kept) <= lines:
        return text
    return "\n".join([*kept[:lines], f"… ({len(kept) - lines} more lines)"])


# ---------------------------------------------------------------- Slack


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(text: str, url: str | None) -> str:
    if not url:
        return _slack_escape(text)
    return f"<{_slack_escape(url)}|{_slack_escape(text).replace('|', '¦')}>"


def _slack_code(text: str, limit: int) -> str:
    body = _slack_escape(_clip_lines(text)).replace("```", "\u02cb\u02cb\u02cb")
    return "```" + truncate(body, limit - 6) + "```"


def _slack_revision(msg: Message) -> str:
    if msg.revision is None:
        return "\u2013"
    revision = _slack_link(msg.revision.short, msg.revision_url)
    if msg.revision.subject:
        revision += " " + _slack_escape(msg.revision.subject)
    if msg.revision.author:
        revision += f"\n_{_slack_escape(msg.revision.author)}_"
    return revision


def _slack_facts(msg: Message) -> dict[str, Any]:
    facts = [
        ("Stack", f"`{_slack_escape(msg.stack)}`"),
        ("Environment", _slack_escape(msg.environment)),
        ("Revision", _slack_revision(msg)),
        ("Reason", f"`{_slack_escape(msg.reason)}`" if msg.reason else "\u2013"),
    ]
    if msg.services:
        facts.append(("Services", _slack_escape(", ".join(msg.services))))
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": truncate(f"*{name}*\n{value}", SLACK_FIELD)}
            for name, value in facts[:10]
        ],
    }


def _slack_details(msg: Message) -> list[dict[str, Any]]:
    blocks = []
    for detail in msg.details[:5]:
        head = f"*{_slack_escape(detail.title)}*\n"
        body = (
            _slack_code(detail.text, SLACK_TEXT - len(head))
            if detail.code
            else truncate(_slack_escape(detail.text), SLACK_TEXT - len(head))
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": head + body}})
    return blocks


def _slack_context(msg: Message, username: str) -> dict[str, Any]:
    context = [_slack_link(link.text, link.url) for link in msg.links]
    context.append(
        _slack_escape(f"{username or 'reconciler'} · {msg.kind} · {format_time(msg.at)}")
    )
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": " · ".join(context)[:SLACK_TEXT]}],
    }


def slack(msg: Message, username: str = "") -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(f"{msg.emoji} {msg.title}", SLACK_HEADER),
                "emoji": True,
            },
        }
    ]
    if msg.text:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": truncate(_slack_escape(msg.text), SLACK_TEXT)},
            }
        )
    blocks.append(_slack_facts(msg))
    blocks.extend(_slack_details(msg))
    blocks.append(_slack_context(msg, username))
    payload: dict[str, Any] = {
        "text": truncate(_slack_escape(f"{msg.emoji} {msg.summary}"), SLACK_TEXT),
        "blocks": blocks,
    }
    return payload


# ---------------------------------------------------------------- Discord


def _discord_code(text: str, limit: int) -> str:
    body = _clip_lines(text).replace("```", "\u02cb\u02cb\u02cb")
    return "```\n" + truncate(body, limit - 8) + "\n```"


def discord(msg: Message, username: str = "") -> dict[str, Any]:
    fields: list[dict[str, Any]] = [
        {"name": "Stack", "value": msg.stack, "inline": True},
        {"name": "Environment", "value": msg.environment, "inline": True},
        {"name": "Reason", "value": msg.reason or "\u2013", "inline": True},
    ]
    if msg.revision is not None:
        rev = (
            f"[`{msg.revision.short}`]({msg.revision_url})"
            if msg.revision_url
            else f"`{msg.revision.short}`"
        )
        if msg.revision.subject:
            rev += f" {msg.revision.subject}"
        if msg.revision.author:
            rev += f"\nby {msg.revision.author}"
        fields.append({"name": "Revision", "value": rev, "inline": False})
    if msg.services:
        fields.append({"name": "Services", "value": ", ".join(msg.services), "inline": False})
    for detail in msg.details[:5]:
        value = _discord_code(detail.text, DISCORD_FIELD_VALUE) if detail.code else detail.text
        fields.append({"name": detail.title, "value": value, "inline": False})
    links = " · ".join(
        f"[{link.text}]({link.url})" if link.url else link.text for link in msg.links
    )
    description = msg.text + (f"\n\n{links}" if links else "")
    embed: dict[str, Any] = {
        "title": truncate(f"{msg.emoji} {msg.title}", DISCORD_TITLE),
        "description": truncate(description, DISCORD_DESCRIPTION),
        "color": msg.color,
        "fields": [
            {
                "name": truncate(f["name"], DISCORD_FIELD_NAME),
                "value": truncate(f["value"] or "\u2013", DISCORD_FIELD_VALUE),
                "inline": f["inline"],
            }
            for f in fields[:25]
        ],
        "footer": {"text": truncate(f"{username or 'reconciler'} · {msg.kind}", DISCORD_FOOTER)},
        "timestamp": format_time(msg.at),
    }
    if msg.revision_url:
        embed["url"] = msg.revision_url
    _fit_discord(embed)
    payload: dict[str, Any] = {"embeds": [embed], "allowed_mentions": {"parse": []}}
    if username:
        payload["username"] = username[:80]
    return payload


def discord_size(embed: dict[str, Any]) -> int:
    """The characters Discord counts against its 6000 limit."""
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += len(embed.get("footer", {}).get("text", ""))
    total += len(embed.get("author", {}).get("name", ""))
    total += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    return total


def _fit_discord(embed: dict[str, Any]) -> None:
    """Shrink the longest parts (details, then the description) until the embed fits."""
    while discord_size(embed) > DISCORD_TOTAL:
        over = discord_size(embed) - DISCORD_TOTAL
        fields = embed["fields"]
        longest = max(fields, key=lambda f: len(f["value"]), default=None)
        if longest is not None and len(longest["value"]) > 200:
            longest["value"] = truncate(
                longest["value"], max(200, len(longest["value"]) - over - 1)
            )
        elif len(embed["description"]) > 200:
            embed["description"] = truncate(
                embed["description"], max(200, len(embed["description"]) - over - 1)
            )
        elif fields:
            fields.pop()
        else:  # pragma: no cover - title + footer alone never exceed 6000
            break


# ---------------------------------------------------------------- generic JSON


def webhook(msg: Message, event: dict[str, Any], username: str = "") -> dict[str, Any]:
    """The generic webhook document (``version`` 1). ``event`` is the event's masked JSON form."""
    return {
        "version": 1,
        "source": username or "reconciler",
        "kind": msg.kind,
        "severity": msg.severity,
        "title": msg.title,
        "summary": msg.summary,
        "text": msg.text,
        "stack": msg.stack,
        "environment": msg.environment,
        "revision": None
        if msg.revision is None
        else {
            "sha": msg.revision.sha,
            "short": msg.revision.short,
            "subject": msg.revision.subject,
            "author": msg.revision.author,
            "url": msg.revision_url,
        },
        "reason": msg.reason,
        "services": list(msg.services),
        "details": [{"title": d.title, "text": d.text} for d in msg.details],
        "links": [{"text": link.text, "url": link.url} for link in msg.links if link.url],
        "at": format_time(msg.at),
        "event": event,
    }
