"""The PostgreSQL adapter: a ``databases`` pool over asyncpg, with errors translated at this edge.

Connection failures become ``StoreUnavailable`` (the API answers 503 and readiness reports it);
constraint violations become ``IntegrityViolation`` naming the constraint, so the stores can turn
them into 409/422 without importing asyncpg.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from databases import Database
from sqlalchemy.sql import ClauseElement

from api.errors import IntegrityViolation, StoreUnavailable
from api.settings import DatabaseSettings

Row = Mapping[str, Any]

_INTEGRITY = {
    asyncpg.UniqueViolationError: "unique",
    asyncpg.ForeignKeyViolationError: "foreign_key",
    asyncpg.CheckViolationError: "check",
    asyncpg.NotNullViolationError: "not_null",
}
_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionFailureError,
    asyncpg.InsufficientResourcesError,
    asyncpg.AdminShutdownError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.TooManyConnectionsError,
    asyncpg.QueryCanceledError,
)


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        kind = _INTEGRITY.get(type(exc), "integrity")
        raise IntegrityViolation(getattr(exc, "constraint_name", None), kind) from exc
    except _UNAVAILABLE as exc:
        raise StoreUnavailable("postgres", type(exc).__name__) from exc


class Db:
    """The few query operations the stores use, on a pool sized from the settings."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self._database = Database(
            settings.url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            command_timeout=settings.command_timeout,
            timeout=settings.connect_timeout,
        )

    @property
    def connected(self) -> bool:
        return bool(self._database.is_connected)

    async def connect(self) -> None:
        async with _translated():
            await self._database.connect()

    async def disconnect(self) -> None:
        if self._database.is_connected:
            await self._database.disconnect()

    async def fetch_all(self, query: ClauseElement) -> Sequence[Row]:
        async with _translated():
            rows = await self._database.fetch_all(query)
        return [_as_mapping(row) for row in rows]

    async def fetch_one(self, query: ClauseElement) -> Row | None:
        async with _translated():
            row = await self._database.fetch_one(query)
        return None if row is None else _as_mapping(row)

    async def fetch_val(self, query: ClauseElement) -> Any:
        async with _translated():
            return await self._database.fetch_val(query)

    async def execute(self, query: ClauseElement | str) -> Any:
        async with _translated():
            return await self._database.execute(query)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with _translated(), self._database.transaction():
            yield


def _as_mapping(row: Any) -> dict[str, Any]:
    # databases' Record converts types on item access (not through ._mapping)
    return {key: row[key] for key in row._mapping.keys()}  # noqa: SIM118 - asyncpg Record
