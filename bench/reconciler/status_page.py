"""How fast the reconciler's status page and JSON API answer with a full status (50 history
entries, 20 services with drift), served by the real HTTP server on the real engine's Agent.

    . .venv/bin/activate && python bench/reconciler/status_page.py [requests]

Prints p50/p95/max per route and the page size. Loopback only."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from reconciler.agent import Agent
from reconciler.config import Config, load_config
from reconciler.models import FieldDiff, PassResult, RevisionInfo
from reconciler.state import StateStore
from reconciler.status import ConditionType, HistoryEntry, ServiceStatus, Status
from reconciler.web import StatusServer
from reconciler.wiring import open_engine


def _status(stack: str) -> Status:
    now = datetime.now(UTC)
    rev = RevisionInfo("ab" * 20, "Bump api to 1.2.3", "Alice <a@example.org>", now)
    status = Status(stack=stack, environment="production", desired=rev, last_applied=rev)
    status = status.with_condition(ConditionType.READY, True, "ReconciliationSucceeded", "", now)
    services = tuple(
        ServiceStatus(
            name=f"svc{i}",
            image=f"ghcr.io/acme/svc{i}:1.2.3",
            live_image=f"ghcr.io/acme/svc{i}:1.2.2",
            replicas_desired=3,
            replicas_running=3,
            in_sync=i % 4 != 0,
            healthy=True,
            drift=(FieldDiff("env.DB_PASSWORD", "a", "b"), FieldDiff("replicas", "3", "2")),
        )
        for i in range(20)
    )
    history = tuple(
        HistoryEntry(
            rev,
            now - timedelta(minutes=i + 1),
            now - timedelta(minutes=i),
            12.5,
            PassResult.SUCCESS if i % 3 else PassResult.ROLLED_BACK,
            "ReconciliationSucceeded",
            "deployed svc1 with a long enough message to be realistic " * 2,
            ("svc1", "svc2"),
        )
        for i in range(50)
    )
    return replace(status, inventory=services, history=history, last_pass_at=now)


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(
            None,
            {
                "RECONCILER_GIT__URL": "git@github.com:acme/driftless.git",
                "RECONCILER_STATE_DIR": str(Path(tmp) / "state"),
                "RECONCILER_HTTP__PORT": "0",
            },
        )
        StateStore(config.state_dir).save_status(_status(config.stack))
        async with open_engine(config) as engine:
            agent = Agent(engine)
            await _serve(agent, config, n)


async def _serve(agent: Agent, config: Config, n: int) -> None:
    agent.open()
    server = StatusServer.from_config(config, agent.engine.masker)
    await server.start(agent)
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as http:
            for route in ("/", "/?part=content", "/api/status", "/api/history", "/metrics"):
                times, size = [], 0
                for _ in range(n):
                    start = time.perf_counter()
                    async with http.get(base + route) as r:
                        size = len(await r.read())
                    times.append((time.perf_counter() - start) * 1000)
                times.sort()
                p95 = times[int(len(times) * 0.95) - 1]
                print(
                    f"{route:16} p50 {statistics.median(times):6.2f} ms  p95 {p95:6.2f} ms"
                    f"  max {times[-1]:6.2f} ms  {size / 1024:6.1f} KiB"
                )
    finally:
        await server.stop()
        agent.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
