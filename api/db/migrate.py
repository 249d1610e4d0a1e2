"""Run and inspect the Alembic migrations shipped inside the package."""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from loguru import logger
from sqlalchemy.exc import InterfaceError, OperationalError

from api.errors import StoreUnavailable

# pg_advisory_xact_lock key that serialises concurrent migrators ("driftmig" as an integer)
MIGRATION_LOCK_KEY = int.from_bytes(b"driftmig", "big") & 0x7FFF_FFFF_FFFF_FFFF
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def asyncpg_url(url: str) -> str:
    """The SQLAlchemy URL that drives ``url`` (``postgresql://...``) through asyncpg."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return f"postgresql+asyncpg{sep}{rest}"
    return url


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


@cache
def head_revision() -> str:
    """The newest revision this code ships (what the schema must be at to serve requests)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database to ``revision``; blocking (run it in a thread from async code).

    An unreachable server raises ``StoreUnavailable``; SQL errors propagate as they are.
    """
    try:
        command.upgrade(alembic_config(database_url), revision)
    except (OSError, TimeoutError, InterfaceError, OperationalError) as exc:
        raise StoreUnavailable("postgres", f"{type(exc).__name__}: {exc}") from exc


def upgrade_when_reachable(database_url: str, wait: float) -> None:
    """Migrate the database to head, trying again every 2 s while the server cannot be reached,
    for up to ``wait`` seconds: a first deploy starts the migration job before PostgreSQL is up
    (its node may still be pulling the image), which is no fault of the release. Any other
    error, or the server still unreachable after ``wait``, propagates."""
    deadline = time.monotonic() + wait
    while True:
        try:
            upgrade(database_url)
            return
        except StoreUnavailable as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            logger.warning("PostgreSQL is not reachable yet, trying again: {}", exc)
            time.sleep(min(2.0, left))
