"""Background tasks that are meant to run until stopped: named, and loud if they end early."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from loguru import logger


def _report_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        logger.opt(exception=task.exception()).error("background task {} stopped", task.get_name())


def start(coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    task = asyncio.create_task(coroutine, name=name)
    task.add_done_callback(_report_exit)
    return task


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.remove_done_callback(_report_exit)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
