"""Fixtures of the HTTP server's tests: agents built by the composition root (never running a
pass here)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from reconciler_support.agents import AgentFactory, agent_factory


@pytest.fixture
async def make_agent() -> AsyncIterator[AgentFactory]:
    async with agent_factory() as make:
        yield make
