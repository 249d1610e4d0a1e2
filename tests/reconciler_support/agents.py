"""An agent built the way the daemon builds it: through the composition root, with the real
adapters (they connect to nothing until a pass runs)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from reconciler.agent import Agent
from reconciler.config import Config
from reconciler.control import Component
from reconciler.events import Notifier
from reconciler.wiring import open_engine


@contextlib.asynccontextmanager
async def opened_agent(
    config: Config,
    *,
    notifiers: tuple[Notifier, ...] = (),
    components: tuple[Component, ...] = (),
) -> AsyncIterator[Agent]:
    async with open_engine(config) as engine:
        yield Agent(engine, notifiers=notifiers, components=components)


AgentFactory = Callable[[Config], Awaitable[Agent]]


@contextlib.asynccontextmanager
async def agent_factory() -> AsyncIterator[AgentFactory]:
    """``await make(config)`` gives an agent opened with the composition root; all of them are
    closed when the block ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(config: Config) -> Agent:
            return await stack.enter_async_context(opened_agent(config))

        yield make
