"""Helpers for the API tests against the real PostgreSQL and Redis of ``scripts/testenv.sh``.

The ``api`` fixture (conftest.py) runs the app in-process (httpx over ASGI, with the app's real
start-up: pool and migrations) on a fresh database and its own Redis key prefix, so tests do not
see each other's data. Tests that need a real ``api serve`` process use ``serve_api``.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from starlette.applications import Starlette

from api.services import Services

PASSWORD = "correct horse"
FAST_ARGON2 = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", "ARGON2_PARALLELISM": "1"}


class FakeClock:
    """Time that moves only when a test says so (rate-limit windows, token expiry)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.value = start

    def now(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@dataclass
class Api:
    app: Starlette
    client: httpx.AsyncClient
    clock: FakeClock

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def register(self, email: str, password: str = PASSWORD, name: str = "Ann") -> dict:
        response = await self.client.post(
            "/auth/register", json={"email": email, "password": password, "name": name}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        response = await self.client.post(
            "/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def user(self, email: str) -> dict[str, str]:
        await self.register(email)
        return await self.login(email)

    async def admin(self, email: str = "admin@shop.example") -> dict[str, str]:
        from api.admin import create_admin

        await create_admin(self.services.settings, email, "Admin", "admin password")
        return await self.login(email, "admin password")


ApiFactory = Callable[..., contextlib.AbstractAsyncContextManager[Api]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def wait_http(
    url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout} s")
