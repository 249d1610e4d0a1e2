"""The test command's servers: ``scripts/testenv.sh up`` works when run twice in a row and after a
run that died half way (its PostgreSQL and Redis killed, their pid files left behind), and
``down`` leaves nothing running.

The script runs for real on a cache directory of its own (``DRIFTLESS_CACHE_DIR``), so the
checkout's own servers are not touched. Only PostgreSQL and Redis are exercised: ``docker`` is
hidden from the script (a ``docker`` that always fails comes first on PATH) so that ``down`` does
not tidy the Docker engine other tests and engineers share.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def cache_dir() -> Iterator[Path]:
    # outside pytest's tmp_path: the postgres user must be able to reach the data directory
    root = Path(tempfile.mkdtemp(prefix="driftless-testenv-"))
    root.chmod(0o755)
    hidden = root / "no-docker"
    hidden.mkdir()
    (hidden / "docker").write_text("#!/bin/sh\nexit 1\n")
    (hidden / "docker").chmod(0o755)
    try:
        yield root
    finally:
        pg = root / "testenv" / "pg"
        if (pg / "data" / "postmaster.pid").exists():  # the test failed half way
            subprocess.run(_script(root, "down"), check=False, capture_output=True)
        redis = root / "testenv" / "redis" / "redis.pid"
        if redis.exists():
            _kill(int(redis.read_text()))
        shutil.rmtree(root, ignore_errors=True)


def _script(cache: Path, *args: str) -> list[str]:
    script = Path(__file__).resolve().parents[2] / "scripts" / "testenv.sh"
    path = f"{cache / 'no-docker'}:{os.environ['PATH']}"
    return ["env", f"DRIFTLESS_CACHE_DIR={cache}", f"PATH={path}", "bash", str(script), *args]


def _run(cache: Path, *args: str) -> dict[str, str]:
    result = subprocess.run(_script(cache, *args), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    env_file = cache / "testenv" / "env"
    if not env_file.exists():
        return {}
    env = {}
    for line in env_file.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = shlex.split(value)[0] if value else ""
    return env


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return status != "Z"


def _pids(cache: Path) -> tuple[int, int]:
    state = cache / "testenv"
    postgres = int((state / "pg" / "data" / "postmaster.pid").read_text().split()[0])
    redis = int((state / "redis" / "redis.pid").read_text())
    return postgres, redis


def _answers(env: dict[str, str]) -> None:
    sql = subprocess.run(
        ["psql", env["TEST_PG_ADMIN_URL"], "-tAc", "SELECT 1"], capture_output=True, text=True
    )
    assert sql.stdout.strip() == "1", sql.stderr
    pong = subprocess.run(
        ["redis-cli", "-p", env["TEST_REDIS_PORT"], "ping"], capture_output=True, text=True
    )
    assert pong.stdout.strip() == "PONG"


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="scripts/testenv.sh runs as root")
def test_up_twice_after_a_crash_and_down(cache_dir: Path) -> None:
    first = _run(cache_dir, "up", "pg", "redis")
    _answers(first)
    old = _pids(cache_dir)

    second = _run(cache_dir, "up", "pg", "redis")  # again, with the servers still up
    _answers(second)
    assert not any(_alive(pid) for pid in old), "the first run's servers were left running"
    assert _pids(cache_dir) != old

    for pid in _pids(cache_dir):  # a run that died half way: servers gone, pid files left
        _kill(pid)
    assert (cache_dir / "testenv" / "pg" / "data" / "postmaster.pid").exists()
    third = _run(cache_dir, "up", "pg", "redis")
    _answers(third)

    running = _pids(cache_dir)
    assert _run(cache_dir, "down") == {}  # the env file is gone with the servers
    assert not any(_alive(pid) for pid in running)
