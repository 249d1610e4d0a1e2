"""Notification delivery against a local HTTP receiver playing Slack, Discord and a generic
webhook (the real services cannot be reached from here). The agent is the real engine's
``Agent`` (not started), so the counts are its ``reconciler_notifications_total``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from loguru import logger
from prometheus_client import generate_latest
from reconciler_support.agents import opened_agent
from web_support.payloads import check_discord, check_slack, check_webhook
from web_support.receiver import Answer, Receiver, running_receiver

from reconciler.agent import Agent
from reconciler.config import load_config
from reconciler.config_sections import NotifyConfig
from reconciler.errors import ConfigError
from reconciler.events import DeployFailed, DeploySucceeded, Event
from reconciler.links import RepoLinks
from reconciler.masking import Masker
from reconciler.models import CheckResult, RevisionInfo
from reconciler.notify import Notifications

T0 = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
REPO = RepoLinks.from_url("https://github.com/acme/driftless.git")


def _failed(sha: str = "ab" * 20) -> DeployFailed:
    return DeployFailed(
        stack="shop",
        environment="staging",
        at=T0,
        revision=RevisionInfo(sha, subject="Bump api to 2.0", author="Alice"),
        reason="HealthCheckFailed",
        message="api: HTTP 503 from /health/ready",
        failed_checks=(CheckResult(name="api", ok=False, status_code=503, output="db down"),),
        rolled_back=("api",),
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    config = load_config(
        None,
        {
            "RECONCILER_GIT__URL": "file:///unused",
            "RECONCILER_STATE_DIR": str(tmp_path / "state"),
            "RECONCILER_STACK": "shop",
            "RECONCILER_ENVIRONMENT": "staging",
        },
    )
    async with opened_agent(config) as agent:
        yield agent


def _counts(agent: Agent) -> dict[tuple[str, str], float]:
    out = {}
    for family in agent.metrics_registry.collect():
        if family.name != "reconciler_notifications":
            continue
        for sample in family.samples:
            if sample.name == "reconciler_notifications_total":
                out[(sample.labels["channel"], sample.labels["result"])] = sample.value
    return out


def _files(tmp_path: Path, receiver: Receiver) -> dict[str, Path]:
    files = {}
    for kind in ("slack", "discord", "webhook"):
        path = tmp_path / f"{kind}_url"
        path.write_text(f"{receiver.url}/{kind}/T0SECRET/B0SECRET/xyzzy-{kind}\n")
        files[f"{kind}_url_file"] = path
    return files


@pytest.fixture
async def hub(tmp_path: Path, receiver: Receiver, agent: Agent) -> AsyncIterator[Notifications]:
    settings = NotifyConfig(**_files(tmp_path, receiver), retries=3, backoff=0.05, timeout=2.0)
    hub = Notifications(settings, repo=REPO, status_url="https://ops.example.org/reconciler/")
    await hub.start(agent)
    yield hub
    await hub.stop()


async def _notify_all(hub: Notifications, event: Event) -> float:
    started = time.perf_counter()
    for channel in hub.channels:
        await channel.notify(event)
    return time.perf_counter() - started


async def test_each_channel_gets_its_own_format(
    hub: Notifications, receiver: Receiver, agent: Agent
) -> None:
    assert [c.name for c in hub.channels] == ["slack", "discord", "webhook"]
    await _notify_all(hub, _failed())
    slack = (await receiver.until("/slack", 1))[0].body
    discord = (await receiver.until("/discord", 1))[0].body
    hook = (await receiver.until("/webhook", 1))[0].body
    for text in (check_slack(slack), check_discord(discord), check_webhook(hook)):
        for fact in (
            "shop",
            "staging",
            "abababababab",
            "HealthCheckFailed",
            "api",
            "db down",
            "https://github.com/acme/driftless/commit/" + "ab" * 20,
        ):
            assert fact in text, fact
    assert "status page" in check_slack(slack)
    await asyncio.sleep(0.1)
    assert _counts(agent) == {(c, "sent"): 1.0 for c in ("slack", "discord", "webhook")}


async def test_retries_with_backoff_and_retry_after_never_block(
    hub: Notifications, receiver: Receiver, agent: Agent
) -> None:
    receiver.fail("/slack", 500, Answer(429, b"rate_limited", {"Retry-After": "0.3"}))
    receiver.fail(
        "/discord",
        Answer(429, b'{"retry_after": 0.2, "global": false}', {"Content-Type": "application/json"}),
    )
    spent = await _notify_all(hub, _failed())
    assert spent < 0.05, "notify() must only queue"
    slack = await receiver.until("/slack", 3)
    discord = await receiver.until("/discord", 2)
    assert slack[2].at - slack[1].at >= 0.3  # Retry-After honoured
    assert discord[1].at - discord[0].at >= 0.2  # Discord's retry_after honoured
    assert slack[0].body == slack[2].body  # the same message, retried
    await asyncio.sleep(0.1)
    counts = _counts(agent)
    assert counts[("slack", "sent")] == 1.0
    assert counts[("discord", "sent")] == 1.0
    assert ("slack", "failed") not in counts
    assert hub.channels[0].delivered == [("deploy_failed", True, 3)]


async def test_a_rejected_message_is_not_retried_and_is_counted(
    hub: Notifications, receiver: Receiver, agent: Agent
) -> None:
    receiver.fail("/slack", Answer(404, b"no_service"))
    receiver.fail("/discord", 502, 502, 502, 502)  # every attempt fails (1 + 3 retries)
    errors: list[str] = []
    sink = logger.add(errors.append, level="ERROR", format="{message}")
    try:
        await _notify_all(hub, _failed())
        await receiver.until("/discord", 4)
        await asyncio.sleep(0.2)
    finally:
        logger.remove(sink)
    # each failed delivery is logged once, with the answer, and without the webhook URL
    assert len(errors) == 2, errors
    assert any(e.startswith("slack: could not send deploy_failed after 1") for e in errors)
    assert any("discord: could not send deploy_failed after 4" in e for e in errors)
    assert any("HTTP 404: no_service" in e for e in errors)
    assert not any("SECRET" in e or "xyzzy" in e for e in errors)
    assert len(receiver.to("/slack")) == 1
    assert len(receiver.to("/discord")) == 4
    counts = _counts(agent)
    assert counts[("slack", "failed")] == 1.0
    assert counts[("discord", "failed")] == 1.0
    assert counts[("webhook", "sent")] == 1.0


async def test_the_same_alert_is_not_repeated_within_the_window(
    hub: Notifications, receiver: Receiver
) -> None:
    await _notify_all(hub, _failed())
    await _notify_all(hub, _failed())  # same revision, same reason: dropped
    await _notify_all(hub, _failed("cd" * 20))  # another revision: sent
    await receiver.until("/webhook", 2)
    await asyncio.sleep(0.3)
    shas = [r.body["revision"]["sha"] for r in receiver.to("/webhook")]
    assert shas == ["ab" * 20, "cd" * 20]
    assert len(receiver.to("/slack")) == 2


async def test_success_can_be_turned_off_and_dedup_window_zero_repeats(
    tmp_path: Path, receiver: Receiver, agent: Agent
) -> None:
    settings = NotifyConfig(
        webhook_url_file=_files(tmp_path, receiver)["webhook_url_file"],
        on_success=False,
        dedup_window=0,
        backoff=0.05,
    )
    hub = Notifications(settings, repo=REPO)
    await hub.start(agent)
    try:
        ok = DeploySucceeded(
            stack="shop",
            environment="staging",
            at=T0,
            revision=None,
            services=("api",),
            duration_seconds=3,
        )
        await _notify_all(hub, ok)
        await _notify_all(hub, _failed())
        await _notify_all(hub, _failed())
        await receiver.until("/webhook", 2)
        await asyncio.sleep(0.2)
        assert [r.body["kind"] for r in receiver.to("/webhook")] == ["deploy_failed"] * 2
    finally:
        await hub.stop()


async def test_bad_url_files_stop_the_start_with_a_clear_error(
    tmp_path: Path, agent: Agent
) -> None:
    bad = tmp_path / "slack_url"
    bad.write_text("not a url\n")
    with pytest.raises(ConfigError, match="does not hold an http"):
        await Notifications(NotifyConfig(slack_url_file=bad), repo=REPO).start(agent)
    with pytest.raises(ConfigError, match="cannot read"):
        await Notifications(NotifyConfig(discord_url_file=tmp_path / "missing"), repo=REPO).start(
            agent
        )


def test_urls_are_masked_in_the_metrics_and_logs(tmp_path: Path, receiver: Receiver) -> None:
    from reconciler.notify.hub import read_url

    masker = Masker()
    url = read_url(_files(tmp_path, receiver)["slack_url_file"], "slack", masker)
    assert "T0SECRET" not in masker.mask(f"POST {url} failed")
    assert "T0SECRET" not in generate_latest().decode()
