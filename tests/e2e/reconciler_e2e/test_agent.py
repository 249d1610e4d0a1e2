"""The agent's control surface, used in-process as the status page and webhooks will use it,
against the real Swarm and a real git remote: request_sync wakes the loop, passes never overlap,
pause/resume, notifiers get typed events and a failing notifier never breaks a pass."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace

import pytest
from reconciler_support.agents import opened_agent
from reconciler_support.e2e import Env

from reconciler.config import load_config
from reconciler.control import AgentControl
from reconciler.daemon import Daemon
from reconciler.events import DeploySucceeded, Event, RecordingNotifier
from reconciler.models import PassResult
from reconciler.status import ConditionType

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class BrokenNotifier:
    name = "broken"

    async def notify(self, event: Event) -> None:
        raise ConnectionError("chat service down")


async def _until(what: str, check, timeout: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_request_sync_pause_resume_and_notifiers(env: Env) -> None:
    config = load_config(env.config_path, {})
    config = replace(config, sync=replace(config.sync, interval=3600.0, jitter=600.0))
    recorder = RecordingNotifier()
    async with opened_agent(config, notifiers=(recorder, BrokenNotifier())) as agent:
        daemon = Daemon(agent)
        assert isinstance(agent, AgentControl)
        running = asyncio.create_task(daemon.run())
        try:
            # the first pass runs at start-up and deploys
            # (the next pass is scheduled just after the result is recorded: wait for both)
            await _until(
                "the first deploy and the next pass scheduled",
                lambda: (
                    agent.status.last_result == PassResult.SUCCESS
                    and agent.status.next_pass_at is not None
                ),
            )
            assert agent.status.is_true(ConditionType.READY)
            # the next pass is an interval away, moved by up to the jitter
            assert agent.status.last_pass_at is not None
            wait = (agent.status.next_pass_at - agent.status.last_pass_at).total_seconds()
            assert 3600 - 600 - 5 <= wait <= 3600 + 600 + 5
            assert abs(wait - 3600) > 0.01  # jittered (a zero draw is vanishingly unlikely)
            assert isinstance(recorder.events[0], DeploySucceeded)
            assert recorder.events[0].services == ("api", "web")
            # a failing notifier is counted, not fatal
            text = agent.metrics.exposition().decode()
            assert 'reconciler_notifications_total{channel="broken"' in text
            assert 'result="failed"' in text
            assert 'channel="memory",environment="e2e",result="sent"' in text

            # pause: a new revision is fetched and planned but not applied
            await agent.pause("release freeze")
            bump = env.commit("Bump to 2", web=env.images["2"], api=env.images["2"])
            assert await agent.request_sync("webhook")
            assert not await agent.request_sync("webhook")  # coalesced into the queued pass
            await _until(
                "the paused pass",
                lambda: (
                    agent.status.desired is not None
                    and agent.status.desired.sha == bump
                    and agent.status.phase is None
                ),
            )
            assert agent.status.last_reason == "Suspended"
            assert "not applied (paused)" in agent.status.last_message
            assert env.running_tags("web") == ["1"]
            assert agent.status.history[0].trigger == "webhook"

            # resume wakes the loop and applies
            await agent.resume()
            await _until(
                "the resumed deploy",
                lambda: (
                    agent.status.last_applied is not None and agent.status.last_applied.sha == bump
                ),
            )
            assert env.running_tags("web") == ["2"]
            # many wake-ups, one pass at a time: history entries never overlap
            for _ in range(5):
                await agent.request_sync("burst")
                await asyncio.sleep(0.05)
            await _until("the burst to settle", lambda: agent.status.phase is None, 30)
            await asyncio.sleep(0.5)
            entries = sorted(agent.status.history, key=lambda h: h.started_at)
            for earlier, later in itertools.pairwise(entries):
                assert earlier.finished_at <= later.started_at
            # releasing an unknown quarantine entry says so
            assert not await agent.release_quarantine("0" * 40)
        finally:
            daemon._handle_signal(15)  # what SIGTERM does
            assert await asyncio.wait_for(running, 60) == 0
        assert agent.status.paused is False
