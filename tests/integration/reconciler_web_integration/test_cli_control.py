"""``reconciler pause``, ``resume`` and ``release`` as a user runs them (the CLI in its own
process) against a running agent's HTTP API on loopback: they act on the agent, and a wrong
token, an unknown revision or no agent at all each get a clear message and exit code."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from reconciler_support.agents import opened_agent

from reconciler.agent import Agent
from reconciler.config import load_config
from reconciler.errors import Reason
from reconciler.models import RevisionInfo
from reconciler.status import QuarantineEntry
from reconciler.web import StatusServer

TOKEN = "cli-token-6f1e9a"
BAD = RevisionInfo("b" * 40, "Bump web to 3")


@dataclass
class Running:
    agent: Agent
    config: Path
    url: str


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    (tmp_path / "token").write_text(TOKEN + "\n")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        f"stack: shop\nenvironment: test\nstate_dir: {tmp_path / 'state'}\n"
        f"git: {{url: https://git.test/acme/shop.git}}\n"
        f"http: {{port: 0, token_file: {tmp_path / 'token'}}}\n"
    )
    config = load_config(config_file, {})
    async with opened_agent(config) as agent:
        agent.open()
        now = datetime.now(UTC)
        quarantined = QuarantineEntry(BAD, "h1", Reason.HEALTH_CHECK_FAILED, "HTTP 500", now)
        agent.set_status(agent.status.with_quarantine(quarantined))
        server = StatusServer.from_config(config, agent.engine.masker)
        await server.start(agent)
        try:
            yield Running(agent, config_file, f"http://127.0.0.1:{server.port}")
        finally:
            await server.stop()
            agent.close()


async def _cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reconciler.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_pause_resume_and_release_act_on_the_running_agent(running: Running) -> None:
    where = ["--config", str(running.config), "--url", running.url]
    code, out = await _cli("pause", *where, "--reason", "release freeze")
    assert (code, out.strip()) == (0, "applying paused")
    assert running.agent.status.paused
    assert running.agent.status.paused_reason == "release freeze"
    code, out = await _cli("resume", *where)
    assert (code, out.strip()) == (0, "applying resumed")
    assert not running.agent.status.paused
    code, out = await _cli("release", *where, BAD.sha[:10])
    assert code == 0
    assert "released from quarantine" in out
    assert not running.agent.status.quarantine
    code, out = await _cli("release", *where, BAD.sha[:10])
    assert code == 2
    assert "is not quarantined" in out


async def test_a_wrong_token_is_refused_and_never_shown(running: Running, tmp_path: Path) -> None:
    (tmp_path / "other-token").write_text("not-the-token-123\n")
    other = tmp_path / "other.yaml"
    other.write_text(
        running.config.read_text().replace(str(tmp_path / "token"), str(tmp_path / "other-token"))
    )
    code, out = await _cli("pause", "--config", str(other), "--url", running.url)
    assert code == 2
    assert "a valid API token is required" in out
    assert "not-the-token-123" not in out
    assert not running.agent.status.paused


async def test_no_agent_listening_is_transient(running: Running) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    code, out = await _cli(
        "resume", "--config", str(running.config), "--url", f"http://127.0.0.1:{port}"
    )
    assert code == 6
    assert f"no agent answers on http://127.0.0.1:{port}" in out
