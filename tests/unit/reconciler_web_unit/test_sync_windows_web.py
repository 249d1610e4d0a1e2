"""The sync windows where people see and act on them: the status page (whether changes are
applied now and until when, the windows, "Sync anyway"), ``/api/status``, ``POST
/api/sync-anyway`` (token required) and ``reconciler sync-anyway`` / ``reconciler status``.

The agent is the one the daemon builds with fakes at its ports (``reconciler_support.world``:
no Docker, no git server; the fake clock starts on Thursday 2026-01-01 12:00 UTC); the real
``StatusServer`` serves it on a loopback port and is read over HTTP."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import jsonschema
import pytest
from reconciler_support.world import World

from reconciler import cron
from reconciler.agent import Agent
from reconciler.cli.status import status_text
from reconciler.errors import Reason
from reconciler.web import Site, StatusServer
from reconciler.windows import SyncWindow, WindowKind, verdict

TOKEN = "windows-token-3a9f0e"
ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "reconciler/web/static/status.schema.json").read_text())
# active from the fake clock's start (12:00 UTC) to 14:00 UTC, every day
FREEZE = SyncWindow(WindowKind.DENY, cron.parse("0 12 * * *"), 7200.0, reason="lunch freeze")


@dataclass
class Served:
    world: World
    agent: Agent
    url: str
    head: str  # the held revision, the branch head

    async def post(
        self, path: str, *, token: str | None = TOKEN, json_type: bool = False, **kw: object
    ) -> tuple[int, dict[str, object]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if json_type:
            headers["Content-Type"] = "application/json"
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + path, headers=headers, **kw) as r,  # type: ignore[arg-type]
        ):
            return r.status, await r.json(content_type=None)

    async def get(self, path: str) -> str:
        async with aiohttp.ClientSession() as http, http.get(self.url + path) as r:
            assert r.status == 200
            return await r.text()


async def _serve(tmp_path: Path, *, token: bool) -> AsyncIterator[Served]:
    world = World(tmp_path)
    assert (await world.sync()).reason == Reason.RECONCILIATION_SUCCEEDED
    (tmp_path / "token").write_text(TOKEN + "\n")
    world.configure(
        sync={"windows": (FREEZE,)},
        http={"port": 0, "token_file": tmp_path / "token" if token else None},
    )
    head = world.release(web="2", subject="Bump web to 2")
    assert (await world.sync()).reason == Reason.OUTSIDE_SYNC_WINDOW
    async with world.agent() as agent:
        site = Site.from_config(world.config)
        server = StatusServer(world.config.http, site, agent.engine.masker, clock=world.clock.now)
        await server.start(agent)
        try:
            yield Served(world, agent, f"http://127.0.0.1:{server.port}", head)
        finally:
            await server.stop()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async for s in _serve(tmp_path, token=True):
        yield s


@pytest.fixture
async def read_only(tmp_path: Path) -> AsyncIterator[Served]:
    async for s in _serve(tmp_path, token=False):
        yield s


async def test_sync_anyway_needs_the_token(served: Served) -> None:
    status, body = await served.post("/api/sync-anyway", token=None)
    assert status == 401
    assert "token" in str(body["error"])
    status, _ = await served.post("/api/sync-anyway", token="wrong-token")
    assert status == 401
    assert served.agent.status.sync_anyway is None
    assert not served.agent.woken.is_set(), "no pass asked for"


async def test_a_read_only_api_refuses_sync_anyway(read_only: Served) -> None:
    status, body = await read_only.post("/api/sync-anyway", token=TOKEN)
    assert status == 403
    assert "read-only" in str(body["error"])
    assert read_only.agent.status.sync_anyway is None


async def test_sync_anyway_lets_the_head_through_and_asks_for_a_pass(served: Served) -> None:
    status, body = await served.post("/api/sync-anyway")
    assert status == 202
    assert body["revision"] == served.head
    assert body["message"] == (
        f"{served.head[:12]} may be applied outside the sync windows; pass queued"
    )
    assert served.agent.status.sync_anyway == served.head
    assert served.agent.woken.is_set()
    out = await served.agent.run_pass("sync-anyway")
    assert out.reason == Reason.RECONCILIATION_SUCCEEDED
    assert served.world.live() == "2"


async def test_sync_anyway_for_a_given_revision(served: Served) -> None:
    status, body = await served.post("/api/sync-anyway", json={"revision": served.head[:8]})
    assert (status, body["revision"]) == (202, served.head), "a prefix of the head"
    status, body = await served.post("/api/sync-anyway", json={"revision": "not-a-sha"})
    assert status == 400
    assert "give a commit sha" in str(body["error"])
    status, body = await served.post("/api/sync-anyway", json={"revision": "abcdef12"})
    assert status == 409
    assert f"the branch head is {served.head[:12]}" in str(body["error"])
    status, body = await served.post("/api/sync-anyway", data="[1, 2]", json_type=True)
    assert status == 400
    assert body["error"] == 'the body must be JSON: {"revision": "..."}'
    assert served.agent.status.sync_anyway == served.head, "only the first was let through"


async def test_the_page_shows_the_window_and_the_held_change(served: Served) -> None:
    page = await served.get("/")
    assert "Outside sync window" in page  # the headline
    assert "OutsideSyncWindow" in page
    assert "1 change(s) pending, not applied: deny window &#x27;0 12 * * *&#x27;" in page
    assert "sync window closed" in page
    assert 'id="sync-windows" data-open="false"' in page
    assert "<code>0 12 * * *</code> for 2h (UTC)" in page
    assert "lunch freeze" in page
    assert "changes are applied again from 2026-01-01 14:00 UTC" in page
    # the button lets exactly the revision the page shows through
    assert f'name="revision" value="{served.head}"' in page
    assert f"Sync anyway ({served.head[:12]})" in page
    await served.post("/api/sync-anyway")
    page = await served.get("/?part=content")
    assert f"Sync anyway ({served.head[:12]})" not in page
    assert "may be applied outside the windows (this revision only)" in page


async def test_the_page_posts_its_form_with_the_revision(served: Served) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            served.url + "/api/sync-anyway",
            data={"token": TOKEN, "revision": served.head},
            headers={"Accept": "text/html"},
            allow_redirects=False,
        ) as r,
    ):
        assert r.status == 303, "back to the page"
    assert served.agent.status.sync_anyway == served.head


async def test_a_read_only_page_has_no_sync_anyway_button(read_only: Served) -> None:
    page = await read_only.get("/")
    assert "sync window closed" in page
    assert "Sync anyway (" not in page


async def test_the_window_opens_on_the_page_when_its_time_comes(served: Served) -> None:
    served.world.clock.advance(2 * 3600)
    page = await served.get("/")
    assert "sync window open" in page
    assert 'data-open="true"' in page
    assert "Sync anyway (" not in page


async def test_api_status_carries_the_windows_and_matches_its_schema(served: Served) -> None:
    async with aiohttp.ClientSession() as http, http.get(served.url + "/api/status") as r:
        data = await r.json()
    jsonschema.validate(data, SCHEMA)
    windows = data["sync_windows"]
    assert windows["open"] is False
    assert windows["until"] == "2026-01-01T14:00:00Z"
    assert windows["window"]["reason"] == "lunch freeze"
    assert windows["windows"] == [
        {
            "kind": "deny",
            "schedule": "0 12 * * *",
            "duration": "2h",
            "duration_seconds": 7200.0,
            "time_zone": "UTC",
            "reason": "lunch freeze",
        }
    ]
    assert data["last_reason"] == "OutsideSyncWindow"
    assert data["sync_anyway"] is None
    await served.post("/api/sync-anyway")
    async with aiohttp.ClientSession() as http, http.get(served.url + "/api/status") as r:
        data = await r.json()
    jsonschema.validate(data, SCHEMA)
    assert data["sync_anyway"] == served.head


async def test_reconciler_status_says_whether_changes_are_applied(served: Served) -> None:
    now = served.world.clock.now()
    text = status_text(served.agent.status, False, verdict((FREEZE,), now))
    assert (
        "  sync windows:   CLOSED  deny window '0 12 * * *' (UTC, lunch freeze) is active; "
        "changes are applied again from 2026-01-01 14:00 UTC"
    ) in text.splitlines()
    await served.post("/api/sync-anyway")
    text = status_text(served.agent.status, False, verdict((FREEZE,), now))
    assert f"  sync anyway:    {served.head[:12]} may be applied outside the windows" in text


async def _cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reconciler.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=ROOT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_reconciler_sync_anyway_acts_on_the_running_agent(
    served: Served, tmp_path: Path
) -> None:
    cli_token = tmp_path / "cli-token"  # the operator's copy of the agent's token
    cli_token.write_text(TOKEN + "\n")
    config = tmp_path / "cli.yaml"
    config.write_text(f"http: {{token_file: {cli_token}}}\n")
    where = ["--config", str(config), "--url", served.url]
    code, out = await _cli("sync-anyway", *where, "abcdef12")
    assert code == 2
    assert "cannot tell which revision" in out
    code, out = await _cli("sync-anyway", *where)
    assert (code, out.strip()) == (
        0,
        f"{served.head[:12]} may be applied outside the sync windows; pass queued",
    )
    assert served.agent.status.sync_anyway == served.head
    cli_token.write_text("not-the-token\n")
    code, out = await _cli("sync-anyway", *where)
    assert code == 2
    assert "refused" in out
