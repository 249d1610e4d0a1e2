"""Environments side by side: two agents (staging and production), each serving its own page
with the real ``StatusServer`` on loopback (agents built with fakes at their ports:
``reconciler_support.world``); each page shows both, read from the other's ``/api/status``,
linking to it; one that does not answer is shown as unreachable, without holding the page."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from reconciler_support.world import World, image

from reconciler.errors import Reason
from reconciler.web import Site, StatusServer


async def _page(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        return await response.text()


async def test_each_page_shows_the_environments_side_by_side(tmp_path: Path) -> None:
    staging, production = World(tmp_path / "staging"), World(tmp_path / "production")
    staging.release(web="2")
    for world in (staging, production):
        assert (await world.sync()).reason == Reason.RECONCILIATION_SUCCEEDED
    production.configure(http={"port": 0})
    async with production.agent() as prod_agent:
        site = Site.from_config(production.config)
        prod_server = StatusServer(
            production.config.http, site, prod_agent.engine.masker, clock=production.clock.now
        )
        await prod_server.start(prod_agent)
        prod_url = f"http://127.0.0.1:{prod_server.port}/"
        staging.configure(
            http={
                "port": 0,
                "environments": {"production": prod_url, "gone": "http://127.0.0.1:9/"},
            }
        )
        try:
            async with staging.agent() as agent:
                server = StatusServer(
                    staging.config.http,
                    Site.from_config(staging.config),
                    agent.engine.masker,
                    clock=staging.clock.now,
                )
                await server.start(agent)
                try:
                    page = await _page(f"http://127.0.0.1:{server.port}/")
                finally:
                    await server.stop()
        finally:
            await prod_server.stop()
    section = page.split('id="environments"', 1)[1].split("</table>", 1)[0]
    rows = section.split("<tr>")[2:]
    assert len(rows) == 3
    here, gone, prod = rows
    assert "<strong>test</strong>" in here
    assert "web:2" in here
    assert f'href="{prod_url}"' in prod
    assert "web:1" in prod
    assert "Ready" in prod
    head = production.remote.head()
    assert head is not None
    assert head[:12] in prod
    assert "unreachable" in gone
    assert image("web", "2").rsplit("/", 1)[1] in here
