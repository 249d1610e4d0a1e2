"""Fixtures for the API tests: an in-process app on a fresh database, or real ``api serve``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from apitest_helpers import FAST_ARGON2, Api, ApiFactory, FakeClock, Served, free_port, wait_http

from api.app import create_app
from api.settings import Settings


@pytest.fixture
def api_env(pg_database: str, redis_url: str, unique_name: str) -> dict[str, str]:
    """The environment of an API on a fresh database and its own Redis key prefix."""
    return {
        "DATABASE_URL": pg_database,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"{unique_name}:",
        "ENVIRONMENT": "development",
        "DB_POOL_MAX_SIZE": "5",
        **FAST_ARGON2,
    }


@pytest.fixture
def make_api(api_env: dict[str, str]) -> ApiFactory:
    """``async with make_api(**env_overrides) as api:`` an app started on the test database."""

    @contextlib.asynccontextmanager
    async def factory(**overrides: str) -> AsyncIterator[Api]:
        settings = Settings.from_env({**api_env, **overrides})
        clock = FakeClock()
        app = create_app(settings, clock=clock)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                yield Api(app, client, clock)

    return factory


@pytest.fixture
async def api(make_api: ApiFactory) -> AsyncIterator[Api]:
    async with make_api() as started:
        yield started


# ---------------------------------------------------------------- real processes


@pytest.fixture
def serve_api(api_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start ``api serve`` subprocesses; each is stopped (SIGTERM, then SIGKILL) afterwards."""
    started: list[Served] = []

    def start(env: Mapping[str, str] | None = None, ready_path: str = "/health/live") -> Served:
        port = free_port()
        log = tmp_path / f"api-{port}.log"
        full_env = {**os.environ, **api_env, "HOST": "127.0.0.1", "PORT": str(port), **(env or {})}
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "api", "serve"],
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        served = Served(process, f"http://127.0.0.1:{port}", log)
        started.append(served)
        wait_http(served.url + ready_path, process=process)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.terminate()
            try:
                served.process.wait(15)
            except subprocess.TimeoutExpired:
                served.process.kill()
                served.process.wait()
