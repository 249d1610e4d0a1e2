"""Checks of chat payloads against each service's documented format and limits.

Slack incoming webhooks (Block Kit): ``text`` is the notification fallback; ``blocks`` at most 50;
``header`` text is ``plain_text`` of at most 150 characters; ``section`` text at most 3000
characters, ``fields`` at most 10 of at most 2000; ``context`` at most 10 elements.
Discord execute-webhook: ``content`` and/or ``embeds`` (at most 10); embed ``title`` <= 256,
``description`` <= 4096, ``fields`` <= 25 with ``name`` <= 256 and ``value`` <= 1024,
``footer.text`` <= 2048, ``author.name`` <= 256, and at most 6000 characters over all of them;
``color`` an integer; ``timestamp`` ISO 8601.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

SLACK_BLOCKS = {"header", "section", "context", "divider", "actions", "image", "rich_text"}


def check_slack(payload: dict[str, Any]) -> str:
    """Assert the payload is a valid incoming-webhook message; return all its text."""
    assert isinstance(payload.get("text"), str)
    assert payload["text"]
    blocks = payload.get("blocks", [])
    assert len(blocks) <= 50
    texts = [payload["text"]]
    for block in blocks:
        assert block["type"] in SLACK_BLOCKS, block
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < len(block["text"]["text"]) <= 150
            texts.append(block["text"]["text"])
        elif block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert block["text"]["type"] in ("mrkdwn", "plain_text")
                assert 0 < len(block["text"]["text"]) <= 3000
                texts.append(block["text"]["text"])
            fields = block.get("fields", [])
            assert len(fields) <= 10
            for f in fields:
                assert f["type"] in ("mrkdwn", "plain_text")
                assert 0 < len(f["text"]) <= 2000
                texts.append(f["text"])
        elif block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10
            texts.extend(e["text"] for e in block["elements"])
    return "\n".join(texts)


def check_discord(payload: dict[str, Any]) -> str:
    embeds = payload.get("embeds", [])
    assert payload.get("content") or embeds
    assert len(payload.get("content", "")) <= 2000
    assert len(embeds) <= 10
    total = 0
    texts = [payload.get("content", "")]
    for embed in embeds:
        assert len(embed.get("title", "")) <= 256
        assert len(embed.get("description", "")) <= 4096
        assert len(embed.get("fields", [])) <= 25
        for f in embed.get("fields", []):
            assert 0 < len(f["name"]) <= 256
            assert 0 < len(f["value"]) <= 1024
            assert isinstance(f.get("inline", False), bool)
            total += len(f["name"]) + len(f["value"])
            texts += [f["name"], f["value"]]
        footer = embed.get("footer", {}).get("text", "")
        assert len(footer) <= 2048
        total += len(embed.get("title", "")) + len(embed.get("description", "")) + len(footer)
        assert isinstance(embed.get("color", 0), int)
        if "timestamp" in embed:
            datetime.fromisoformat(embed["timestamp"].replace("Z", "+00:00"))
        texts += [embed.get("title", ""), embed.get("description", ""), footer]
    assert total <= 6000
    if "allowed_mentions" in payload:
        assert payload["allowed_mentions"] == {"parse": []}
    return "\n".join(texts)


def check_webhook(payload: dict[str, Any]) -> str:
    for key in (
        "version",
        "kind",
        "severity",
        "title",
        "summary",
        "stack",
        "environment",
        "revision",
        "reason",
        "services",
        "at",
        "event",
    ):
        assert key in payload, key
    assert payload["version"] == 1
    assert payload["event"]["kind"] == payload["kind"]
    return str(payload)
