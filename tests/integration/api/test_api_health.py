"""Liveness, readiness and version, with dependencies that really stop.

Readiness is tested against a PostgreSQL and a Redis started for this test only, so stopping them
does not disturb the shared servers other tests use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from apitest_helpers import ApiFactory, free_port

from api.db.migrate import upgrade


@dataclass
class OwnRedis:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            != b"PONG"
        ):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@dataclass
class OwnPostgres:
    port: int
    data: Path
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        # no pipes: the server started by pg_ctl would hold them open
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def init(self) -> None:
        self.data.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.data.parent, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data.parent} -c fsync=off"
        log = str(self.data.parent / "server.log")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "30", "-o", options, "start"
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    bin_dir = os.environ.get("TEST_PG_BIN")
    if not bin_dir:
        pytest.fail("TEST_PG_BIN is not set: run scripts/testenv.sh up", pytrace=False)
    # outside pytest's tmp_path: that is private to root, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="driftless-pg-"))
    root.chmod(0o711)
    server = OwnPostgres(free_port(), root / "cluster" / "data", Path(bin_dir))
    try:
        server.init()
        server.start()
        yield server
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped by the test already
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_live_and_version(make_api: ApiFactory) -> None:
    env = {"APP_VERSION": "1.2.3", "GIT_REVISION": "abc123", "IMAGE_TAG": "sha-abc123"}
    async with make_api(**env) as api:
        assert (await api.client.get("/health/live")).json() == {"status": "ok"}
        version = await api.client.get("/version")
        assert version.json() == {
            "version": "1.2.3",
            "revision": "abc123",
            "image_tag": "sha-abc123",
        }


async def test_readiness_follows_redis_and_postgres(
    make_api: ApiFactory, own_redis: OwnRedis, own_postgres: OwnPostgres
) -> None:
    env = {"DATABASE_URL": own_postgres.url, "REDIS_URL": own_redis.url}
    async with make_api(**env) as api:
        ready = await api.client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ok",
            "checks": {"postgres": "ok", "redis": "ok", "schema": "ok"},
        }

        own_redis.stop()
        down = await api.client.get("/health/ready")
        assert down.status_code == 503
        assert down.json()["status"] == "unavailable"
        assert down.json()["checks"]["redis"] != "ok"
        assert down.json()["checks"]["postgres"] == "ok"
        # the shop still answers: the cache steps aside, rate limits fail open
        assert (await api.client.get("/products")).status_code == 200
        own_redis.start()
        assert (await api.client.get("/health/ready")).status_code == 200

        own_postgres.stop()
        down = await api.client.get("/health/ready")
        assert down.status_code == 503
        assert down.json()["checks"]["postgres"] != "ok"
        assert down.json()["checks"]["redis"] == "ok"
        # a request that needs PostgreSQL gets 503 with Retry-After, never a 500
        uncached = await api.client.get("/products", params={"limit": 7})
        assert uncached.status_code == 503
        assert uncached.json()["error"] == "unavailable"
        assert uncached.headers["retry-after"]
        own_postgres.start()
        assert (await api.client.get("/health/ready")).status_code == 200
        assert (await api.client.get("/products", params={"limit": 7})).status_code == 200


async def test_readiness_reports_an_unmigrated_schema(make_api: ApiFactory, api_env: dict) -> None:
    async with make_api(MIGRATE_ON_START="false") as api:
        response = await api.client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["schema"] == "not migrated"
        await asyncio.to_thread(upgrade, api_env["DATABASE_URL"])
        assert (await api.client.get("/health/ready")).status_code == 200
