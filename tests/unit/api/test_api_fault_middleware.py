"""The fault middleware on its own: ``slow=N`` makes a response take about N times as long."""

from __future__ import annotations

import asyncio
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from api.faults import Fault
from api.http.faults import SLOW_FLOOR_SECONDS, FaultMiddleware


async def _work(request: Request) -> PlainTextResponse:
    await asyncio.sleep(float(request.query_params.get("seconds", "0")))
    return PlainTextResponse("done")


ROUTES = [Route("/work", _work)]


async def _timed_get(fault: Fault, path: str) -> tuple[httpx.Response, float]:
    app = FaultMiddleware(Starlette(routes=ROUTES), fault=fault, routes=ROUTES)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        start = time.perf_counter()
        response = await client.get(path)
        return response, time.perf_counter() - start


async def test_slow_multiplies_what_the_handler_took() -> None:
    response, took = await _timed_get(Fault(slowdown=3), "/work?seconds=0.2")
    assert response.status_code == 200
    assert response.text == "done"
    assert 0.6 <= took < 0.9  # 0.2 s of work, then 2 x 0.2 s held back


async def test_slow_makes_even_an_instant_handler_measurably_slow() -> None:
    _, took = await _timed_get(Fault(slowdown=2.5), "/work")
    assert took >= 1.5 * SLOW_FLOOR_SECONDS
    assert took < 0.5


async def test_errors_answer_500_without_running_the_handler() -> None:
    response, took = await _timed_get(Fault(error_prefixes=("/wo",)), "/work?seconds=5")
    assert response.status_code == 500
    assert response.json()["error"] == "injected_fault"
    assert took < 1  # the 5 s handler never ran


async def test_paths_outside_the_prefix_are_untouched() -> None:
    response, took = await _timed_get(Fault(error_prefixes=("/products",)), "/work")
    assert (response.status_code, response.text) == (200, "done")
    assert took < SLOW_FLOOR_SECONDS
