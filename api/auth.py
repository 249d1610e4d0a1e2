"""Opaque bearer tokens with an expiry, stored hashed in PostgreSQL and cached in Redis.

A token is 256 random bits; only its SHA-256 is stored, so a database dump holds no usable token.
Every authenticated request resolves the token to a ``Principal``: from Redis when cached (for at
most ``AUTH_CACHE_TTL_SECONDS`` and never past the token's expiry), else from PostgreSQL. Logout
deletes the row and the cache entry, so a revoked token stops working at once on every replica.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from loguru import logger

from api.clock import Clock, utc
from api.db.database import Db
from api.errors import Forbidden, StoreUnavailable, Unauthorized
from api.kv import Kv
from api.presence import Presence
from api.settings import AuthSettings
from api.store import tokens

TOKEN_PREFIX = "dl_"  # noqa: S105 - a marker, not a secret


@dataclass(frozen=True)
class Principal:
    user_id: int
    email: str
    name: str
    role: str
    expires_at: float
    token_hash: bytes

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: float


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value.startswith(TOKEN_PREFIX) or len(value) > 200:
        return None
    return value


class Authenticator:
    def __init__(
        self, db: Db, kv: Kv, clock: Clock, presence: Presence, settings: AuthSettings
    ) -> None:
        self._db = db
        self._kv = kv
        self._clock = clock
        self._presence = presence
        self._settings = settings

    async def issue(self, user_id: int) -> IssuedToken:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock.now()
        expires_at = now + self._settings.token_ttl
        await tokens.purge_expired(self._db, user_id, utc(now))
        await tokens.insert(
            self._db, token_hash=hash_token(token), user_id=user_id, expires_at=utc(expires_at)
        )
        return IssuedToken(token, expires_at)

    async def authenticate(self, authorization: str | None, *, admin: bool = False) -> Principal:
        """The caller, or ``Unauthorized`` (401); ``Forbidden`` (403) if ``admin`` and not one."""
        token = bearer_token(authorization)
        if token is None:
            raise Unauthorized("a bearer token is required")
        principal = await self._resolve(hash_token(token))
        if principal is None:
            raise Unauthorized("the token is invalid, expired or revoked")
        await self._presence.seen(principal.user_id)
        if admin and not principal.is_admin:
            raise Forbidden("only administrators may do this")
        return principal

    async def revoke(self, principal: Principal) -> None:
        await tokens.delete(self._db, principal.token_hash)
        try:
            await self._kv.delete(self._cache_key(principal.token_hash))
        except StoreUnavailable as exc:
            # the row is gone, but a cached copy lives until its TTL: say so
            logger.error("revoked token may stay usable for its cache TTL: {}", exc)

    def _cache_key(self, token_hash: bytes) -> str:
        return self._kv.key("auth", token_hash.hex())

    async def _resolve(self, token_hash: bytes) -> Principal | None:
        now = self._clock.now()
        key = self._cache_key(token_hash)
        cached = None
        try:
            cached = await self._kv.get(key)
        except StoreUnavailable as exc:
            logger.warning("token cache skipped: {}", exc)
        if cached is not None:
            data = json.loads(cached)
            if data["expires_at"] > now:
                return Principal(token_hash=token_hash, **data)
            return None
        row = await tokens.principal(self._db, token_hash, utc(now))
        if row is None:
            return None
        principal = Principal(
            user_id=row["id"],
            email=row["email"],
            name=row["name"],
            role=row["role"],
            expires_at=row["expires_at"].timestamp(),
            token_hash=token_hash,
        )
        ttl = min(self._settings.principal_cache_ttl, principal.expires_at - now)
        if ttl >= 1:
            data = {
                "user_id": principal.user_id,
                "email": principal.email,
                "name": principal.name,
                "role": principal.role,
                "expires_at": principal.expires_at,
            }
            try:
                await self._kv.set(key, json.dumps(data), int(ttl * 1000))
            except StoreUnavailable as exc:
                logger.warning("token cache not filled: {}", exc)
        return principal
