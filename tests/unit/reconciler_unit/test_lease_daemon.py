"""The daemon under a lease (``state.store: swarm``), in seconds: the agent the daemon builds with
fakes at its ports (``reconciler_support.world``) and a fake lease object with the Swarm's
compare-and-swap. An agent that waits runs no pass however often it is woken; it acts once the
holder stops renewing; losing the lease stops the pass it runs; a clean stop releases the lease.
(The real Swarm: tests/e2e/multinode/test_agent_service.py.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from reconciler_support.fakes import FakeLeaseObject
from reconciler_support.world import World

from reconciler.agent import Agent
from reconciler.daemon import Daemon
from reconciler.leadership import Leadership
from reconciler.lease import Lease
from reconciler.models import PassResult
from reconciler.status import AgentStanding

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
DURATION = 0.6  # seconds: renewed every 0.2 s


@pytest.fixture
async def world(tmp_path: Path) -> World:
    world = World(tmp_path)
    assert (await world.sync()).result == PassResult.SUCCESS
    return world


@contextlib.asynccontextmanager
async def running(world: World, obj: FakeLeaseObject) -> AsyncIterator[Agent]:
    """An agent under the lease, its daemon running until the block ends (then stopped)."""
    async with world.agent() as agent:
        agent.leadership = Leadership(
            obj, me="me", node="manager-2", duration=DURATION, now=world.clock.now
        )
        daemon = asyncio.create_task(Daemon(agent).run())
        try:
            yield agent
        finally:
            agent.stopping.set()
            await asyncio.wait_for(daemon, 10)


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_waiting_agent_runs_no_pass_until_the_holder_stops_renewing(world: World) -> None:
    obj = FakeLeaseObject(current=Lease("other", "manager-1", 1, DURATION, T0, T0))
    world.release(web="2")
    async with running(world, obj) as agent:
        for _ in range(8):  # the holder renews for 1.6 s; the agent is woken meanwhile
            await asyncio.sleep(0.2)
            obj.renew("other")
            await agent.request_sync("webhook")
        assert world.live("web") == "1"
        lease = agent.status.lease
        assert lease is not None
        assert not lease.holding
        assert "held by other on manager-1 (term 1)" in lease.why
        # the holder is gone: the agent takes over and applies what waited
        await until(lambda: world.live("web") == "2")
        lease = agent.status.lease
        assert lease is not None
        assert lease.holding
        assert lease.term == 2
    assert obj.current is not None
    assert obj.current.holder == ""  # released when it stopped: the next agent acts at once


async def test_losing_the_lease_stops_the_running_pass_at_once(world: World) -> None:
    async with world.agent() as agent:
        stopped = asyncio.Event()

        async def long_pass() -> None:
            try:
                await asyncio.sleep(30)
            finally:
                stopped.set()

        agent.current = asyncio.create_task(long_pass())  # type: ignore[assignment]
        await asyncio.sleep(0)  # the pass is running
        waiting = AgentStanding(False, "other", "manager-1", 2, "me", "manager-2", "held by other")
        agent.on_lease(waiting, taken=False, lost=True)
        await asyncio.wait_for(stopped.wait(), 1)
        assert agent.current.cancelled()


async def test_a_waiting_agent_never_writes_the_status(world: World) -> None:
    async with world.agent() as agent:
        obj = FakeLeaseObject(current=Lease("other", "manager-1", 1, 60.0, T0, T0))
        agent.leadership = Leadership(obj, me="me", node="m2", duration=60.0, now=world.clock.now)
        await agent.leadership.step()
        before = (world.config.state_dir / "status.json").read_text()
        await agent.pause("from the standby's memory only")
        assert (world.config.state_dir / "status.json").read_text() == before


async def test_the_agent_that_takes_the_lease_tidies_what_the_last_holder_left(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world.agent() as agent:
        calls: list[str] = []

        def tidy() -> int:
            calls.append("tidy")
            return 2

        monkeypatch.setattr(agent.store, "tidy", tidy)
        holding = AgentStanding(True, "me", "manager-2", 2, "me", "manager-2", "")
        agent.on_lease(holding, taken=True, lost=False)
        agent.on_lease(holding, taken=False, lost=False)  # a renewal tidies nothing
        assert calls == ["tidy"]
