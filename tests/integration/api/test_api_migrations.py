"""Alembic migrations: from an empty database, idempotent, three migrators at once, exact schema."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from api.db.migrate import asyncpg_url, head_revision
from api.db.tables import metadata


async def _inspect(url: str, sql: str) -> list[tuple]:
    engine = create_async_engine(asyncpg_url(url))
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in (await connection.execute(sa.text(sql))).all()]
    finally:
        await engine.dispose()


async def _schema_diff(url: str) -> list:
    engine = create_async_engine(asyncpg_url(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
    finally:
        await engine.dispose()


def _migrate(url: str, **extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": "redis://127.0.0.1:1/0", **extra}
    return subprocess.Popen(
        [sys.executable, "-m", "api", "migrate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def test_three_concurrent_migrators_on_an_empty_database(pg_database: str) -> None:
    """Three replicas starting at once: all succeed, exactly one applies the migration."""
    migrators = [_migrate(pg_database) for _ in range(3)]
    outputs = []
    for process in migrators:
        out, _ = await asyncio.to_thread(process.communicate, timeout=60)
        assert process.returncode == 0, out
        outputs.append(out)
    applied = [out for out in outputs if "Running upgrade  -> 0001" in out]
    assert len(applied) == 1, outputs
    assert await _inspect(pg_database, "SELECT version_num FROM alembic_version") == [
        (head_revision(),)
    ]
    # the migrated schema is exactly what the code's tables describe
    assert await _schema_diff(pg_database) == []
    tables = await _inspect(
        pg_database,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    )
    assert [t[0] for t in tables] == [
        "alembic_version",
        "auth_tokens",
        "categories",
        "products",
        "users",
    ]


async def test_migrating_again_changes_nothing(pg_database: str) -> None:
    for _ in range(2):
        process = _migrate(pg_database)
        out, _ = await asyncio.to_thread(process.communicate, timeout=60)
        assert process.returncode == 0, out
    assert "Running upgrade" not in out


async def test_migrate_reports_a_database_still_unreachable_after_its_wait() -> None:
    started = time.monotonic()
    process = _migrate("postgresql://nobody@127.0.0.1:1/none", DB_MIGRATE_WAIT_SECONDS="3")
    out, _ = await asyncio.to_thread(process.communicate, timeout=60)
    assert process.returncode == 1
    assert time.monotonic() - started >= 3
    assert "PostgreSQL is not reachable yet, trying again" in out
    assert "Traceback" not in out
    assert "postgres unavailable" in out


async def test_migrate_waits_for_a_database_that_starts_after_it(pg_database: str) -> None:
    """A first deploy: the migration job starts before PostgreSQL listens (its node is still
    pulling the image). Here PostgreSQL is reached through a port that opens 4 s later."""
    real = urlsplit(pg_database)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    late = real._replace(
        netloc=real.netloc.replace(f"{real.hostname}:{real.port}", f"127.0.0.1:{port}")
    )
    process = _migrate(urlunsplit(late), DB_MIGRATE_WAIT_SECONDS="60")
    await asyncio.sleep(4)
    assert process.poll() is None, "migrate gave up on a database that is not up yet"

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(real.hostname, real.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", port)
    try:
        out, _ = await asyncio.to_thread(process.communicate, timeout=60)
    finally:
        server.close()
    assert process.returncode == 0, out
    assert "PostgreSQL is not reachable yet, trying again" in out
    assert "Running upgrade  -> 0001" in out
