"""The HTTP health checks against a real HTTP server on loopback: retries until the service
answers, the accepted status codes, the expected version, the soak time, and messages that name
what failed (they end up in the status, the alert and the revert commit)."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from reconciler.adapters.clock import SystemClock
from reconciler.adapters.http import HttpChecker
from reconciler.masking import Masker
from reconciler.models import HealthCheck


@dataclass
class Service:
    """A service whose answers change with the number of requests it has seen."""

    base: str = ""
    hits: dict[str, int] = field(default_factory=dict)


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    state = Service()

    def count(request: web.Request) -> int:
        n = state.hits.get(request.path, 0) + 1
        state.hits[request.path] = n
        return n

    async def starting(request: web.Request) -> web.Response:
        # 503 for the first three requests, as a service still warming up
        if count(request) <= 3:
            return web.json_response({"status": "starting"}, status=503)
        return web.json_response({"status": "ok"})

    async def broken(request: web.Request) -> web.Response:
        count(request)
        return web.json_response({"status": "broken: migration 42 missing"}, status=500)

    async def version(request: web.Request) -> web.Response:
        count(request)
        return web.json_response({"version": "1.4.2", "revision": "abc123"})

    async def text_version(request: web.Request) -> web.Response:
        count(request)
        return web.Response(text="shop 1.4.2 ready")

    async def no_content(request: web.Request) -> web.Response:
        count(request)
        return web.Response(status=204)

    async def flapping(request: web.Request) -> web.Response:
        # healthy for two requests, then down: it passes once and breaks during the soak
        if count(request) <= 2:
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "out of memory"}, status=500)

    app = web.Application()
    app.router.add_get("/starting", starting)
    app.router.add_get("/broken", broken)
    app.router.add_get("/version", version)
    app.router.add_get("/text-version", text_version)
    app.router.add_get("/no-content", no_content)
    app.router.add_get("/flapping", flapping)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.base = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


def _check(service: Service, path: str, **kw: object) -> HealthCheck:
    values: dict[str, object] = {"timeout": 2.0, "interval": 0.05}
    values.update(kw)
    return HealthCheck(name=path.strip("/"), url=service.base + path, **values)  # type: ignore[arg-type]


async def test_retries_until_the_service_answers(service: Service) -> None:
    [result] = await HttpChecker(SystemClock(), Masker()).run([_check(service, "/starting")])
    assert result.ok, result.output
    assert result.attempts == 4
    assert result.status_code == 200
    assert service.hits["/starting"] == 4


async def test_a_service_that_keeps_failing_fails_with_its_output(service: Service) -> None:
    started = time.monotonic()
    [result] = await HttpChecker(SystemClock(), Masker()).run(
        [_check(service, "/broken", timeout=1.0)]
    )
    assert time.monotonic() - started >= 1.0
    assert not result.ok
    assert result.status_code == 500
    assert result.output.startswith("still failing after 1s (")
    assert "HTTP 500" in result.output
    assert "broken: migration 42 missing" in result.output
    assert result.attempts == service.hits["/broken"] > 1


async def test_accepted_status_codes(service: Service) -> None:
    checker = HttpChecker(SystemClock(), Masker())
    strict, ranged = await checker.run(
        [
            _check(service, "/no-content", timeout=0.2),  # 200 only (the default)
            _check(service, "/no-content", expect_status=tuple(range(200, 300))),  # "2xx"
        ]
    )
    assert not strict.ok
    assert "HTTP 204" in strict.output
    assert ranged.ok, ranged.output
    assert ranged.attempts == 1


async def test_the_expected_version_must_be_the_one_served(service: Service) -> None:
    checker = HttpChecker(SystemClock(), Masker())
    right, wrong, text, text_wrong = await checker.run(
        [
            _check(service, "/version", expect_version="1.4.2"),
            _check(service, "/version", expect_version="1.4.3", timeout=0.3),
            _check(service, "/text-version", expect_version="1.4.2"),
            _check(service, "/text-version", expect_version="1.4", timeout=0.3),
        ]
    )
    assert right.ok, right.output
    assert not wrong.ok
    assert "version 1.4.3 is not served" in wrong.output
    assert '"version": "1.4.2"' in wrong.output  # what it served instead
    assert text.ok, text.output
    assert not text_wrong.ok


async def test_the_soak_time_must_pass_without_a_failure(service: Service) -> None:
    checker = HttpChecker(SystemClock(), Masker())
    steady_check = _check(service, "/version", soak=0.4)
    steady, flapping = await checker.run(
        [steady_check, _check(service, "/flapping", soak=1.0, timeout=5.0)]
    )
    assert steady.ok, steady.output
    assert steady.elapsed_seconds >= 0.4
    assert steady.attempts > 1
    assert not flapping.ok
    assert flapping.output.startswith("failed during the 1s soak: HTTP 500")
    assert "out of memory" in flapping.output
    assert service.hits["/flapping"] == 3


async def test_nothing_listening_is_a_clear_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        check = HealthCheck(
            name="gone", url=f"http://127.0.0.1:{port}/health", timeout=0.3, interval=0.05
        )
        [result] = await HttpChecker(SystemClock(), Masker()).run([check])
    assert not result.ok
    assert result.status_code is None
    assert "ClientConnectorError" in result.output
    assert f"127.0.0.1:{port}" in result.output
