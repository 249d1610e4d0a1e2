"""With several agents on one stack (``state.store: swarm``), what each one's page, API and metrics
say: the agent that waits shows *Standby* and who acts where, and refuses actions that would
change only its own memory; the acting one shows the node it acts on.

The agent is the one the daemon builds with fakes at its ports (``reconciler_support.world``); its
lease standing is set as the lease keeper sets it (``Agent.on_lease``); the real ``StatusServer``
serves it on a loopback port."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import jsonschema
import pytest
from reconciler_support.world import World

from reconciler.agent import Agent
from reconciler.errors import Reason
from reconciler.placement import Node
from reconciler.status import AgentStanding
from reconciler.web import Site, StatusServer

TOKEN = "standby-token-51c2"
ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "reconciler/web/static/status.schema.json").read_text())
WAITING = AgentStanding(
    holding=False,
    holder="driftless_reconciler.1.x7/3fa1c2",
    node="manager-1",
    term=4,
    me="driftless_reconciler.2.k2/9b0e11",
    my_node="manager-2",
    why="the lease is held by driftless_reconciler.1.x7/3fa1c2 on manager-1 (term 4)",
)
ACTING = AgentStanding(True, WAITING.me, "manager-2", 5, WAITING.me, "manager-2")


@dataclass
class Served:
    agent: Agent
    url: str

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(self.url + path) as r:
            return r.status, await r.text()

    async def post(self, path: str) -> tuple[int, dict[str, object]]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + path, headers=headers) as r,
        ):
            return r.status, await r.json(content_type=None)


NODES = [
    Node("a1", "manager-1", "manager", {"driftless.db": "true"}),
    Node("b2", "manager-2", "manager"),
    Node("c3", "worker-1", "worker", {"driftless.role": "edge"}, state="down"),
]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    world = World(tmp_path)
    world.swarm.swarm_nodes = list(NODES)
    assert (await world.sync()).reason == Reason.RECONCILIATION_SUCCEEDED
    (tmp_path / "token").write_text(TOKEN + "\n")
    world.configure(http={"port": 0, "token_file": tmp_path / "token"})
    async with world.agent() as agent:
        site = Site.from_config(world.config)
        server = StatusServer(world.config.http, site, agent.engine.masker, clock=world.clock.now)
        await server.start(agent)
        try:
            yield Served(agent, f"http://127.0.0.1:{server.port}")
        finally:
            await server.stop()


async def test_a_waiting_agent_says_standby_and_who_acts_where(served: Served) -> None:
    served.agent.on_lease(WAITING, taken=False, lost=False)
    status, page = await served.get("/")
    assert status == 200
    assert "Standby" in page
    assert "held by driftless_reconciler.1.x7/3fa1c2 on manager-1 (term 4)" in page
    _, body = await served.get("/api/status")
    data = json.loads(body)
    jsonschema.validate(data, SCHEMA)
    assert data["lease"]["holding"] is False
    assert data["lease"]["node"] == "manager-1"
    _, metrics = await served.get("/metrics")
    assert any(
        line.startswith("reconciler_lease_held{") and line.endswith(" 0.0")
        for line in metrics.splitlines()
    )


async def test_a_waiting_agent_refuses_actions_that_would_change_only_its_memory(
    served: Served,
) -> None:
    served.agent.on_lease(WAITING, taken=False, lost=False)
    status, body = await served.post("/api/pause")
    assert status == 409
    assert "standby" in str(body["error"])
    assert "ask the acting agent on manager-1" in str(body["error"])
    assert not served.agent.status.paused
    status, _ = await served.post("/api/sync")
    assert status == 409
    assert not served.agent.woken.is_set()


async def test_the_acting_agent_shows_the_node_it_acts_on_and_takes_actions(
    served: Served,
) -> None:
    served.agent.on_lease(ACTING, taken=False, lost=False)
    _, page = await served.get("/")
    assert "Standby" not in page
    assert "acting on manager-2 (lease term 5)" in page
    status, _ = await served.post("/api/pause")
    assert status == 202
    assert served.agent.status.paused
    _, metrics = await served.get("/metrics")
    assert any(
        line.startswith("reconciler_lease_term{") and line.endswith(" 5.0")
        for line in metrics.splitlines()
    )


async def test_the_page_shows_the_nodes_and_which_one_the_agent_acts_on(served: Served) -> None:
    served.agent.on_lease(ACTING, taken=False, lost=False)
    _, page = await served.get("/")
    assert "2 of 3 ready" in page
    for node in NODES:
        assert f'data-node="{node.hostname}"' in page
    row = page.split('data-node="manager-2"')[1].split("</tr>")[0]
    assert ">agent<" in row
    assert ">agent<" not in page.split('data-node="manager-1"')[1].split("</tr>")[0]
    assert "driftless.role=edge" in page
    _, body = await served.get("/api/status")
    data = json.loads(body)
    jsonschema.validate(data, SCHEMA)
    assert [n["state"] for n in data["nodes"]] == ["ready", "ready", "down"]
