"""Fixtures shared by every test: the real servers that ``scripts/testenv.sh up`` started.

The servers are described by ``.cache/testenv/env`` (written by ``scripts/testenv.sh``). Tests that
need a server fail with a clear message when it is not there; nothing here is mocked.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / ".cache" / "testenv" / "env"
ARTIFACTS = ROOT / ".cache" / "artifacts"


def _load_env_file() -> None:
    if not ENV_FILE.exists():
        return
    for line in ENV_FILE.read_text().splitlines():
        line = line.strip()
        if not line.startswith("export "):
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        parts = shlex.split(value)
        os.environ.setdefault(key, parts[0] if parts else "")


_load_env_file()


def require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: start the test servers with `sudo scripts/testenv.sh up` "
            "or run everything with `./scripts/test.sh`",
            pytrace=False,
        )
    return value


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """Superuser URL of the test PostgreSQL server (database ``postgres``)."""
    return require_env("TEST_PG_ADMIN_URL")


def _psql(admin_url: str, sql: str) -> None:
    subprocess.run(
        ["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def pg_database(pg_admin_url: str, unique_name: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards. Yields its URL."""
    name = f"t_{unique_name}"
    _psql(pg_admin_url, f'CREATE DATABASE "{name}"')
    base, _, _ = pg_admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        _psql(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_env("TEST_REDIS_URL")


@pytest.fixture(scope="session")
def registry() -> str:
    """host:port of the local image registry (e2e tests)."""
    return require_env("TEST_REGISTRY")


@pytest.fixture(scope="session")
def base_image() -> str:
    """The local Python base image that replaces python:3.12-slim on machines without a registry."""
    return require_env("TEST_BASE_IMAGE")


@pytest.fixture
def unique_name() -> str:
    """A short name for things a test creates in shared servers (stacks, databases)."""
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    return f"{prefix}{uuid.uuid4().hex[:8]}"
