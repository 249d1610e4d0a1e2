"""The HTTP server's start-up and read-only mode, on the real engine's ``Agent`` (not running:
its status is the empty one a fresh state directory gives)."""

from __future__ import annotations

import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from reconciler_support.agents import AgentFactory

from reconciler.config import Config, load_config
from reconciler.errors import ConfigError
from reconciler.state import StateStore
from reconciler.status import Status
from reconciler.web import Site, StatusServer


@pytest.fixture
def config(tmp_path: Path) -> Config:
    loaded = load_config(
        None,
        {
            "RECONCILER_GIT__URL": "https://github.com/acme/shop.git",
            "RECONCILER_STATE_DIR": str(tmp_path / "state"),
            "RECONCILER_HTTP__PORT": "0",
        },
    )
    # start-up refuses a password in the URL; the page masks one all the same (defence in depth)
    url = "https://deploy:s3cret-in-url@github.com/acme/shop.git"
    return replace(loaded, git=replace(loaded.git, url=url))


async def test_a_busy_port_or_a_missing_secret_file_is_a_config_error(
    config: Config, tmp_path: Path, make_agent: AgentFactory
) -> None:
    agent = await make_agent(config)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = StatusServer.from_config(replace(config, http=replace(config.http, port=port)))
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            await server.start(agent)
    missing = replace(config, http=replace(config.http, token_file=tmp_path / "nope"))
    with pytest.raises(ConfigError, match="cannot read the API token file"):
        await StatusServer.from_config(missing).start(agent)


async def test_without_a_token_the_api_is_read_only(
    config: Config, make_agent: AgentFactory
) -> None:
    agent = await make_agent(config)
    server = StatusServer.from_config(config)
    await server.start(agent)
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/sync", headers={"Authorization": "Bearer x"}) as r:
                assert r.status == 403
                assert "read-only" in (await r.json())["error"]
            async with http.post(f"{base}/hooks/github") as r:
                assert r.status == 403
            async with http.get(f"{base}/") as r:
                page = await r.text()
                assert r.status == 200
                assert "Content-Security-Policy" in r.headers
                assert "read-only" in page
                assert "Starting" in page
                assert "s3cret-in-url" not in page
                assert "https://github.com/acme/shop" in page
            async with http.get(f"{base}/api/status") as r:
                data = await r.json()
                assert data["source"]["repository"] == "https://***@github.com/acme/shop.git"
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200
                assert (await r.json())["status"] == "starting"
            async with http.get(f"{base}/static/app.js") as r:
                assert r.status == 200
            async with http.get(f"{base}/api/schema/status.json") as r:
                assert (await r.json())["title"].startswith("Reconciler status")
    finally:
        await server.stop()


async def test_actions_work_as_plain_form_posts_without_javascript(
    config: Config, tmp_path: Path, make_agent: AgentFactory
) -> None:
    token = tmp_path / "token"
    token.write_text("form-token-123456\n")
    config = replace(config, http=replace(config.http, token_file=token))
    agent = await make_agent(config)
    server = StatusServer.from_config(config)
    await server.start(agent)
    base = f"http://127.0.0.1:{server.port}"
    html = {"Accept": "text/html"}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/") as r:
                page = await r.text()
            assert 'formaction="api/sync"' in page
            assert 'name="token"' in page
            form = {"token": "wrong"}
            async with http.post(f"{base}/api/sync", data=form, headers=html) as r:
                assert r.status == 401
            form = {"token": "form-token-123456"}
            async with http.post(
                f"{base}/api/sync", data=form, headers=html, allow_redirects=False
            ) as r:
                assert r.status == 303
                assert r.headers["Location"] == "../"
            # the agent is not running, so the first request is still queued: coalesced
            auth = {"Authorization": "Bearer form-token-123456"}
            async with http.post(f"{base}/api/sync", headers=auth) as r:
                assert r.status == 202
                assert (await r.json())["queued"] is False
            async with http.post(
                f"{base}/api/pause", data=form, headers=html, allow_redirects=False
            ) as r:
                assert r.status == 303
            assert agent.status.paused is True
    finally:
        await server.stop()


async def test_healthz_is_503_when_the_next_pass_is_overdue(
    config: Config, make_agent: AgentFactory
) -> None:
    """A loop that stopped scheduling: its next pass is long past (the server's clock is a test
    clock, moved two hours on)."""
    now = datetime.now(UTC)
    StateStore(config.state_dir).save_status(
        replace(
            Status(stack=config.stack, environment=config.environment),
            last_pass_at=now - timedelta(minutes=2),
            next_pass_at=now - timedelta(minutes=1),
        )
    )
    agent = await make_agent(config)
    agent.open()
    clock = [now]
    server = StatusServer(
        config.http, Site.from_config(config), agent.engine.masker, clock=lambda: clock[0]
    )
    await server.start(agent)
    url = f"http://127.0.0.1:{server.port}/healthz"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as r:
                assert r.status == 200
            clock[0] = now + timedelta(hours=2)
            async with http.get(url) as r:
                body = await r.json()
                assert r.status == 503
                assert body["status"] == "stuck"
                assert "overdue" in body["detail"]
    finally:
        await server.stop()
        agent.close()
