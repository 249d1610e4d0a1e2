"""Stopping background tasks: a cancellation lost inside a library must not hang shutdown."""

from __future__ import annotations

import asyncio
import time

from loguru import logger

from api import tasks


async def _loses_cancellations(lost: list[int]) -> None:
    """A sync loop whose client turns the first ``lost[0]`` cancellations into an error it
    catches (what redis-py does with a cancellation that lands in its socket timeout)."""
    while True:
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if lost[0] <= 0:
                raise
            lost[0] -= 1


async def test_a_lost_cancellation_is_repeated() -> None:
    lost = [1]
    task = tasks.start(_loses_cancellations(lost), "sync")
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await tasks.stop(task)
    assert task.cancelled()
    assert lost == [0]  # the first cancellation was lost, the second one ended it
    assert time.monotonic() - started < 1.0


async def test_a_task_that_never_stops_is_left_after_the_grace_period() -> None:
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(m.record["message"]), level="ERROR")
    lost = [10**9]
    task = tasks.start(_loses_cancellations(lost), "stubborn")
    await asyncio.sleep(0.05)  # running, inside its loop
    try:
        started = time.monotonic()
        await tasks.stop(task, grace=0.5)
        assert 0.5 <= time.monotonic() - started < 1.5
        assert not task.done()
        assert errors == ["background task stubborn did not stop within 0.5 s; going on without it"]
    finally:
        logger.remove(sink)
        lost[0] = 0
        await tasks.stop(task)


async def test_stopping_an_ended_task_reports_its_failure() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(m.record["message"]), level="ERROR")
    try:
        task = asyncio.create_task(fails(), name="short")
        await asyncio.sleep(0)
        await tasks.stop(task)
        await tasks.stop(None)
    finally:
        logger.remove(sink)
    assert errors == ["background task short failed"]
