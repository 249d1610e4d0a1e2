from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from api.db.database import Db, Row
from api.db.tables import auth_tokens, users


async def insert(db: Db, *, token_hash: bytes, user_id: int, expires_at: datetime) -> None:
    await db.execute(
        auth_tokens.insert().values(token_hash=token_hash, user_id=user_id, expires_at=expires_at)
    )


async def principal(db: Db, token_hash: bytes, now: datetime) -> Row | None:
    """The user holding this unexpired token, with the token's expiry."""
    query = (
        sa.select(users.c.id, users.c.email, users.c.name, users.c.role, auth_tokens.c.expires_at)
        .select_from(auth_tokens.join(users, users.c.id == auth_tokens.c.user_id))
        .where(auth_tokens.c.token_hash == token_hash, auth_tokens.c.expires_at > now)
    )
    return await db.fetch_one(query)


async def delete(db: Db, token_hash: bytes) -> None:
    await db.execute(auth_tokens.delete().where(auth_tokens.c.token_hash == token_hash))


async def purge_expired(db: Db, user_id: int, now: datetime) -> None:
    await db.execute(
        auth_tokens.delete().where(
            auth_tokens.c.user_id == user_id, auth_tokens.c.expires_at <= now
        )
    )
