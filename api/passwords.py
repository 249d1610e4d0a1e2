"""Password hashing with argon2id (argon2-cffi).

Hashing runs in worker threads, at most ``ARGON2_MAX_CONCURRENT`` at a time: each one holds
``ARGON2_MEMORY_KIB`` of memory (19 MiB by default), so a burst of logins queues instead of pushing
the container over its memory limit.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api.settings import AuthSettings


class Passwords:
    def __init__(self, settings: AuthSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # verified when the e-mail is unknown, so that a miss costs as much as a wrong password
        self._decoy = self._hasher.hash("decoy password that matches nothing")
        self._slots = asyncio.Semaphore(settings.argon2_max_concurrent)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; a missing user still pays for one verification."""
        async with self._slots:
            return await asyncio.to_thread(self._verify, stored_hash, password)

    def _verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            self._hasher.verify(stored_hash or self._decoy, password)
        except (VerificationError, InvalidHashError):
            return False
        return stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True
