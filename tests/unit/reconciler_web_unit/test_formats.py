"""Chat payloads stay within each service's documented limits and carry the facts.

Slack Block Kit: header plain_text <= 150, section text <= 3000, <= 10 fields of <= 2000, <= 50
blocks. Discord embeds: title <= 256, description <= 4096, <= 25 fields (name <= 256, value <=
1024), footer <= 2048, <= 6000 characters in all.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from web_support.payloads import check_discord, check_slack, check_webhook

from reconciler.events import (
    DeployFailed,
    DeploySucceeded,
    DriftDetected,
    Event,
    OutsideSyncWindow,
    Recovered,
    RevertPushed,
    RevisionRefused,
    Stalled,
)
from reconciler.links import RepoLinks
from reconciler.masking import Masker
from reconciler.models import CheckResult, FieldDiff, RevisionInfo
from reconciler.notify import formats
from reconciler.notify.message import build

T0 = datetime(2025, 1, 2, tzinfo=UTC)
REV = RevisionInfo(
    "ab" * 20, subject="Bump api to 9 <@everyone> & co", author="Bob", committed_at=T0
)
REPO = RepoLinks.from_url("git@github.com:acme/driftless.git")
MASK = Masker().mask


def _huge_failure() -> DeployFailed:
    return DeployFailed(
        stack="driftless",
        environment="production",
        at=T0,
        revision=REV,
        reason="HealthCheckFailed",
        message="api: HTTP 500 " + "x" * 5000,
        failed_checks=tuple(
            CheckResult(
                name=f"check{i}",
                ok=False,
                status_code=500,
                url="http://api:3000/ready",
                output="Traceback line\n" * 400,
            )
            for i in range(8)
        ),
        rolled_back=("api", "worker"),
    )


def test_slack_payload_fits_block_kit_limits() -> None:
    payload = formats.slack(build(_huge_failure(), REPO, MASK, "https://ops.example.org/r/"), "Bot")
    blocks = payload["blocks"]
    assert payload["text"]
    assert len(blocks) <= 50
    assert blocks[0]["type"] == "header"
    assert len(blocks[0]["text"]["text"]) <= 150
    assert blocks[0]["text"]["type"] == "plain_text"
    for block in blocks:
        if block["type"] == "section":
            if "text" in block:
                assert block["text"]["type"] == "mrkdwn"
                assert len(block["text"]["text"]) <= 3000
            for f in block.get("fields", []):
                assert len(f["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
    text = str(payload)
    # names the stack, environment, linked revision, services and reason; escapes Slack markup
    for needle in (
        "driftless",
        "production",
        "HealthCheckFailed",
        "api, worker",
        "<https://github.com/acme/driftless/commit/" + REV.sha + "|abababababab>",
        "&lt;@everyone&gt; &amp; co",
        "<https://ops.example.org/r/|status page>",
    ):
        assert needle in text, needle
    assert "<@everyone>" not in text


def test_discord_payload_fits_embed_limits() -> None:
    payload = formats.discord(build(_huge_failure(), REPO, MASK), "Bot")
    assert payload["allowed_mentions"] == {"parse": []}
    (embed,) = payload["embeds"]
    assert len(embed["title"]) <= 256
    assert len(embed["description"]) <= 4096
    assert len(embed["fields"]) <= 25
    assert all(len(f["name"]) <= 256 and 0 < len(f["value"]) <= 1024 for f in embed["fields"])
    assert formats.discord_size(embed) <= 6000
    assert isinstance(embed["color"], int)
    assert embed["timestamp"] == "2025-01-02T00:00:00Z"
    assert embed["url"].endswith(REV.sha)
    names = [f["name"] for f in embed["fields"]]
    assert names[:3] == ["Stack", "Environment", "Reason"]
    assert "Revision" in names


def test_revert_and_drift_messages_link_and_mask() -> None:
    revert = RevertPushed(
        stack="s",
        environment="e",
        at=T0,
        revision=REV,
        commit="cd" * 20,
        reverted=(REV.sha,),
        reason="HealthCheckFailed",
        message="boom",
    )
    msg = build(revert, REPO, MASK)
    assert any(link.url and link.url.endswith("cd" * 20) for link in msg.links)
    drift = DriftDetected(
        stack="s",
        environment="e",
        at=T0,
        revision=REV,
        services=("api",),
        diffs={
            "api": (
                FieldDiff("env.API_TOKEN", "want-secret", "live-secret"),
                FieldDiff("replicas", "2", "3"),
            )
        },
    )
    for payload in (
        formats.slack(build(drift, REPO, MASK)),
        formats.discord(build(drift, REPO, MASK)),
        formats.webhook(build(drift, REPO, MASK), {}, "x"),
    ):
        text = str(payload)
        assert "want-secret" not in text
        assert "live-secret" not in text
        assert "env.API_TOKEN" in text
        assert "replicas: 3 \u2192 2" in text
    recovered = build(
        Recovered(
            stack="s",
            environment="e",
            at=T0,
            revision=REV,
            previous_reason="HealthCheckFailed",
            message="ok",
        ),
        REPO,
        MASK,
    )
    assert recovered.tone == "ok"
    assert "HealthCheckFailed" in recovered.text


def _every_event() -> list[Event]:
    base = {"stack": "shop", "environment": "prod", "at": T0, "revision": REV}
    return [
        DeploySucceeded(**base, services=("api",), duration_seconds=31),
        replace(_huge_failure(), stack="shop", environment="prod"),
        RevertPushed(**base, commit="cd" * 20, reverted=(REV.sha,), reason="HealthCheckFailed"),
        RevisionRefused(
            **base, reason="ValidationFailed", message="bad file", problems=("no image",)
        ),
        Stalled(**base, reason="RollbackFailed", message="rollback of api failed: no such image"),
        DriftDetected(**base, services=("api",), diffs={"api": (FieldDiff("replicas", "2", "3"),)}),
        Recovered(**base, previous_reason="HealthCheckFailed", message="ready again"),
        OutsideSyncWindow(
            **base,
            message="1 change(s) pending, not applied: deny window '0 18 * * 5' is active",
            services=("api",),
        ),
    ]


@pytest.mark.parametrize("event", _every_event(), ids=lambda e: e.kind.value)
def test_every_event_names_stack_environment_linked_revision_and_reason(event: Event) -> None:
    """Each kind of alert, on each channel, within the channel's documented format."""
    msg = build(event, REPO, MASK, "https://ops.example.org/r/")
    link = "https://github.com/acme/driftless/commit/" + REV.sha
    texts = {
        "slack": check_slack(formats.slack(msg, "Bot")),
        "discord": check_discord(formats.discord(msg, "Bot")),
        "webhook": check_webhook(formats.webhook(msg, event.to_dict(), "Bot")),
    }
    for channel, text in texts.items():
        for fact in ("shop", "prod", REV.short, link, msg.reason):
            assert fact in text, (channel, fact)
        for service in msg.services:
            assert service in text, (channel, service)
    assert msg.reason  # every alert says why


def test_a_stall_says_a_human_is_needed_and_why() -> None:
    stalled = Stalled(
        stack="shop",
        environment="prod",
        at=T0,
        revision=REV,
        reason="RollbackFailed",
        message="rollback of api failed: no such image",
    )
    text = check_slack(formats.slack(build(stalled, REPO, MASK), "Bot"))
    assert "needs a human" in text
    assert "RollbackFailed" in text
    assert "rollback of api failed: no such image" in text
