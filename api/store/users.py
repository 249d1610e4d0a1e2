from __future__ import annotations

import sqlalchemy as sa

from api.db.database import Db, Row
from api.db.tables import users
from api.errors import Conflict, IntegrityViolation

_PUBLIC = (users.c.id, users.c.email, users.c.name, users.c.role, users.c.created_at)


async def create(db: Db, *, email: str, name: str, password_hash: str, role: str = "user") -> Row:
    query = (
        users.insert()
        .values(email=email, name=name, password_hash=password_hash, role=role)
        .returning(*_PUBLIC)
    )
    try:
        row = await db.fetch_one(query)
    except IntegrityViolation as exc:
        if exc.kind == "unique":
            raise Conflict("a user with this email is already registered") from exc
        raise
    assert row is not None
    return row


async def by_email(db: Db, email: str) -> Row | None:
    query = sa.select(*_PUBLIC, users.c.password_hash).where(
        sa.func.lower(users.c.email) == email.lower()
    )
    return await db.fetch_one(query)


async def by_id(db: Db, user_id: int) -> Row | None:
    return await db.fetch_one(sa.select(*_PUBLIC).where(users.c.id == user_id))


async def set_password_hash(db: Db, user_id: int, password_hash: str) -> None:
    await db.execute(
        users.update().where(users.c.id == user_id).values(password_hash=password_hash)
    )


async def make_admin(db: Db, user_id: int, password_hash: str) -> Row:
    query = (
        users.update()
        .where(users.c.id == user_id)
        .values(role="admin", password_hash=password_hash)
        .returning(*_PUBLIC)
    )
    row = await db.fetch_one(query)
    assert row is not None
    return row
