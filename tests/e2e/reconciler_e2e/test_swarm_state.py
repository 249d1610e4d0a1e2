"""The agent's state kept in the real Swarm (``state.store: swarm``): two agents on one stack, the
lease taken and renewed by the Swarm's own compare-and-swap (a service update at a version), the
status and journal readable by any agent, and a write by an agent that lost the lease refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import docker
import docker.errors
import pytest

from reconciler.adapters.swarm_state import STATE_LABEL, SwarmState
from reconciler.adapters.swarm_store import SwarmStore
from reconciler.errors import LeaseLost
from reconciler.journal import Journal
from reconciler.leadership import Leadership
from reconciler.models import Phase, RevisionInfo
from reconciler.status import Status

pytestmark = pytest.mark.e2e


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def stack(unique_name: str) -> Iterator[str]:
    client = docker.from_env()
    yield unique_name
    with contextlib.suppress(docker.errors.NotFound):
        client.api.remove_service(f"{unique_name}-agent-state")
    for config in client.api.configs(filters={"label": f"{STATE_LABEL}={unique_name}"}):
        client.api.remove_config(config["ID"])
    client.close()


def agent(stack: str, clock: Clock, me: str) -> tuple[SwarmState, Leadership]:
    state = SwarmState(docker.from_env(), stack)
    now = lambda: datetime.now(UTC)  # noqa: E731
    return state, Leadership(state, me=me, node=f"node-{me}", duration=15, now=now, monotonic=clock)


def configs(stack: str) -> set[str]:
    client = docker.from_env()
    found = client.api.configs(filters={"label": f"{STATE_LABEL}={stack}"})
    return {c["Spec"]["Name"] for c in found}


def test_reading_the_state_of_a_stack_no_agent_manages_creates_nothing(
    stack: str, tmp_path: Path
) -> None:
    """``reconciler status`` on a manager where no agent ever ran: an empty status, and no
    lease object or config left behind in the Swarm."""
    store = SwarmStore(SwarmState(docker.from_env(), stack), tmp_path)
    assert not store.has_status()
    assert store.load_status(stack, "production").last_applied is None
    assert store.load_journal() is None
    with pytest.raises(docker.errors.NotFound):
        docker.from_env().api.inspect_service(f"{stack}-agent-state")
    assert configs(stack) == set()


def test_one_agent_acts_and_a_takeover_fences_the_old_one_out(stack: str, tmp_path: Path) -> None:
    clock = Clock()
    state_a, a = agent(stack, clock, "a")
    state_b, b = agent(stack, clock, "b")
    asyncio.run(a.step())
    asyncio.run(b.step())
    assert a.holds()
    assert not b.holds()
    assert "held by a on node-a (term 1)" in b.standing.why

    store_a = SwarmStore(state_a, tmp_path / "a", monotonic=clock)
    store_b = SwarmStore(state_b, tmp_path / "b", monotonic=clock)
    status = Status(stack=stack, environment="production", last_message="applied abc")
    store_a.save_status(status)
    journal = Journal(
        revision=RevisionInfo(sha="a" * 40, subject="web 1.2"),
        desired_hash="h1",
        phase=Phase.VERIFY,
        started_at=datetime.now(UTC),
        changed=("web",),
        previous={"web": None},
    )
    store_a.save_journal(journal)
    # the other agent reads what the holder wrote, and cannot write itself
    assert store_b.load_status(stack, "production").last_message == "applied abc"
    loaded = store_b.load_journal()
    assert loaded is not None
    assert loaded.changed == ("web",)
    with pytest.raises(LeaseLost):
        store_b.save_journal(journal)

    # a renews while b watches: b waits as long as a renews
    for _ in range(4):
        clock.t += 5
        asyncio.run(a.step())
        asyncio.run(b.step())
    assert a.holds()
    assert not b.holds()

    # a stops renewing (its node died); b takes over once the lease stood still 15 s
    clock.t += 5
    asyncio.run(b.step())
    clock.t += 11
    asyncio.run(b.step())
    assert b.holds()
    assert b.standing.term == 2
    resumed = store_b.load_journal()
    assert resumed is not None
    assert resumed.revision.sha == "a" * 40
    store_b.clear_journal()
    # a comes back believing it still holds: every write it tries is refused by the Swarm
    with pytest.raises(LeaseLost):
        store_a.save_journal(journal)
    assert store_b.load_journal() is None
    asyncio.run(a.step())
    assert not a.holds()
    assert "held by b on node-b (term 2)" in a.standing.why


def test_the_state_keeps_one_config_per_document_and_prunes_what_a_lost_write_left(
    stack: str, tmp_path: Path
) -> None:
    clock = Clock()
    state, a = agent(stack, clock, "a")
    asyncio.run(a.step())
    store = SwarmStore(state, tmp_path, monotonic=clock)
    for n in range(3):
        clock.t += 120  # past the status' write interval
        store.save_status(Status(stack=stack, environment="production", last_message=f"pass {n}"))
    assert len([c for c in configs(stack) if "-agent-status-" in c]) == 1
    # a no-op pass that changes only the pass times is not written again within the minute
    before = state.read().version
    store.save_status(
        Status(stack=stack, environment="production", last_message="pass 2",
               last_pass_at=datetime.now(UTC))
    )  # fmt: skip
    assert state.read().version == before
    docker.from_env().api.create_config(
        f"{stack}-agent-status-left", b"{}", labels={STATE_LABEL: stack}
    )
    assert state.prune() == 1
    assert store.load_status(stack, "production").last_message == "pass 2"
