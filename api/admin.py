"""``api create-admin``: create an administrator or promote an existing user."""

from __future__ import annotations

from loguru import logger
from pydantic import ValidationError

from api.db.database import Db
from api.errors import ValidationFailed
from api.http.endpoint import issues
from api.passwords import Passwords
from api.schemas.users import RegisterRequest
from api.settings import Settings
from api.store import users


async def create_admin(settings: Settings, email: str, name: str, password: str) -> int:
    try:
        checked = RegisterRequest(email=email, password=password, name=name)
    except ValidationError as exc:
        problems = "; ".join(f"{i.loc.removeprefix('body.')}: {i.msg}" for i in issues(exc, "body"))
        raise ValidationFailed(f"invalid administrator: {problems}") from exc
    db = Db(settings.database)
    await db.connect()
    try:
        password_hash = await Passwords(settings.auth).hash(checked.password)
        existing = await users.by_email(db, str(checked.email))
        if existing is None:
            row = await users.create(
                db,
                email=str(checked.email),
                name=checked.name,
                password_hash=password_hash,
                role="admin",
            )
            logger.info("created administrator {} (id {})", row["email"], row["id"])
        else:
            row = await users.make_admin(db, existing["id"], password_hash)
            logger.info(
                "{} (id {}) is now an administrator; password reset", row["email"], row["id"]
            )
    finally:
        await db.disconnect()
    return 0
