"""A local HTTP server that plays Slack, Discord and a generic webhook endpoint for tests.

It records every request (path, headers, JSON body, arrival time) and answers like the real
service does: Slack ``200 ok``, Discord ``204 No Content``, the generic endpoint ``200``. A test can
queue other answers (``fail("/slack", 500, 500)``, a 429 with ``Retry-After``) for the next
requests to a path. Only ever bound to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._plans: dict[str, list[Answer]] = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.url = ""

    def fail(self, path: str, *answers: Answer | int) -> None:
        with self._lock:
            self._plans.setdefault(path, []).extend(
                a if isinstance(a, Answer) else Answer(a, b"error") for a in answers
            )

    def answer(self, path: str) -> Answer:
        with self._lock:
            for prefix, plan in self._plans.items():
                if path.startswith(prefix) and plan:
                    return plan.pop(0)
        if path.startswith("/slack"):
            return Answer(200, b"ok", {"Content-Type": "text/html"})
        if path.startswith("/discord"):
            return Answer(204)
        return Answer(200, b'{"ok": true}', {"Content-Type": "application/json"})

    def record(self, request: Request) -> None:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()

    def to(self, prefix: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    async def until(self, prefix: str, count: int, timeout: float = 20.0) -> list[Request]:
        """``wait_for`` for async tests: polls, so the event loop keeps running."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.to(prefix)
            if len(got) >= count or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        if len(got) < count:
            raise AssertionError(f"{prefix}: {len(got)} request(s), wanted {count}")
        return got

    def wait_for(self, prefix: str, count: int, timeout: float = 20.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if r.path.startswith(prefix)]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{prefix}: {len(got)} request(s) after {timeout}s, wanted {count}: "
                        f"{[r.body for r in got]}"
                    )
                self._cond.wait(left)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            receiver.record(Request(self.path, dict(self.headers), body, time.monotonic()))
            answer = receiver.answer(self.path)
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if answer.body:
                self.wfile.write(answer.body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
