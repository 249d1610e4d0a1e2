"""Background tasks that are meant to run until stopped: named, and loud if they end early."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from loguru import logger

#: how often ``stop`` repeats a cancellation that the task did not act on
_RECANCEL_EVERY = 0.2


def _report_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        logger.opt(exception=task.exception()).error("background task {} stopped", task.get_name())


def start(coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    task = asyncio.create_task(coroutine, name=name)
    task.add_done_callback(_report_exit)
    return task


async def stop(task: asyncio.Task[None] | None, grace: float = 5.0) -> None:
    """Cancel ``task`` and wait until it has ended, at most ``grace`` seconds.

    A cancellation can be lost inside a client library (redis-py turns one that lands in its
    socket timeout into a timeout error, which a sync loop catches and carries on), and a loop
    that lost it would keep shutdown waiting for ever: so the cancellation is repeated until the
    task ends, and after ``grace`` seconds shutdown goes on without it.
    """
    if task is None:
        return
    task.remove_done_callback(_report_exit)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while not task.done():
        left = deadline - loop.time()
        if left <= 0:
            logger.error(
                "background task {} did not stop within {:g} s; going on without it",
                task.get_name(),
                grace,
            )
            return
        task.cancel()
        await asyncio.wait({task}, timeout=min(_RECANCEL_EVERY, left))
    if not task.cancelled() and task.exception() is not None:
        logger.opt(exception=task.exception()).error("background task {} failed", task.get_name())
