"""The HTTP checks port: the fake checker (the real retry, timeout and soak logic on a fake
network) against the real one on a real HTTP server on loopback. Both are given the same answers
to give, in turn, and must come to the same verdict with the same words."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import pytest
from aiohttp import web
from reconciler_support.fakes import FakeChecker, FakeClock

from reconciler.adapters.clock import SystemClock
from reconciler.adapters.http import HttpChecker
from reconciler.masking import Masker
from reconciler.models import HealthCheck
from reconciler.ports import HealthChecker

Answer = tuple[int | None, str]  # status (None: nobody listens) and body


class Side(Protocol):
    checker: HealthChecker

    def serve(self, path: str, *answers: Answer) -> str: ...


@dataclass
class _Fake:
    checker: FakeChecker = field(default_factory=lambda: FakeChecker(FakeClock()))

    def serve(self, path: str, *answers: Answer) -> str:
        url = f"http://svc.test{path}"
        if answers[0][0] is None:  # what aiohttp says when nobody listens
            refused = "ClientConnectorError: Cannot connect to host svc.test:80 [Connect refused]"
            answers = ((None, refused),)
        self.checker.serve(url, *answers)
        return url


@dataclass
class _Real:
    base: str
    closed: str  # a port nobody listens on
    checker: HttpChecker = field(default_factory=lambda: HttpChecker(SystemClock(), Masker()))
    answers: dict[str, list[Answer]] = field(default_factory=dict)

    def serve(self, path: str, *answers: Answer) -> str:
        if answers[0][0] is None:
            return f"{self.closed}{path}"
        self.answers[path] = list(answers)
        return f"{self.base}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        queue = self.answers[request.path]
        status, body = queue.pop(0) if len(queue) > 1 else queue[0]
        return web.Response(status=status or 500, text=body, content_type="application/json")


@pytest.fixture(params=["fake", "real"])
async def side(request: pytest.FixtureRequest) -> AsyncIterator[Side]:
    if request.param == "fake":
        yield _Fake()
        return
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
    real = _Real("", closed)
    app = web.Application()
    app.router.add_get("/{tail:.*}", real.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    real.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield real
    finally:
        await runner.cleanup()


def _check(url: str, **kw: object) -> HealthCheck:
    values: dict[str, object] = {"timeout": 1.0, "interval": 0.2, **kw}
    return HealthCheck(name="api", url=url, **values)  # type: ignore[arg-type]


OK = (200, json.dumps({"status": "ok", "version": "2"}))


async def test_an_answer_it_accepts_passes_at_once(side: Side) -> None:
    [result] = await side.checker.run([_check(side.serve("/ok", OK))])
    assert result.ok
    assert result.attempts == 1
    assert result.output.startswith("HTTP 200")


async def test_a_service_still_starting_passes_once_it_answers(side: Side) -> None:
    url = side.serve("/starting", (503, '{"status": "starting"}'), (503, "{}"), OK)
    [result] = await side.checker.run([_check(url)])
    assert result.ok
    assert result.attempts == 3


async def test_a_failing_service_fails_at_its_timeout_with_its_answer(side: Side) -> None:
    [result] = await side.checker.run([_check(side.serve("/broken", (500, "migration missing")))])
    assert not result.ok
    assert result.status_code == 500
    assert result.output.startswith("still failing after 1s")
    assert "HTTP 500: migration missing" in result.output


async def test_the_wrong_version_fails(side: Side) -> None:
    url = side.serve("/version", (200, '{"version": "1"}'))
    [result] = await side.checker.run([_check(url, expect_version="2")])
    assert not result.ok
    assert "HTTP 200 but version 2 is not served" in result.output


async def test_a_failure_during_the_soak_fails_at_once(side: Side) -> None:
    url = side.serve("/flapping", OK, OK, (500, "out of memory"))
    [result] = await side.checker.run([_check(url, soak=1.0)])
    assert not result.ok
    assert result.output.startswith("failed during the 1s soak: HTTP 500")


async def test_nobody_listening_fails_saying_so(side: Side) -> None:
    [result] = await side.checker.run([_check(side.serve("/x", (None, "")))])
    assert not result.ok
    assert result.status_code is None
    assert "Cannot connect to host" in result.output
