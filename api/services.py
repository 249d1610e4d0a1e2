"""The adapters one API process uses, built from the settings, started and stopped in order."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from loguru import logger

from api.auth import Authenticator
from api.cache import Cache
from api.clock import Clock, SystemClock
from api.db import migrate
from api.db.database import Db
from api.errors import StoreUnavailable
from api.kv import Kv
from api.metrics import Metrics
from api.passwords import Passwords
from api.presence import Presence
from api.ratelimit import Limit, RateLimiter
from api.settings import Settings, redact_url
from api.throttle import SharedThrottle


@dataclass(frozen=True)
class Limits:
    per_ip: Limit
    login_per_ip: Limit
    login_per_email: Limit

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        s = settings.limits
        return cls(
            per_ip=Limit("ip", s.per_ip, s.per_ip_window),
            login_per_ip=Limit("login_ip", s.login_per_ip, s.login_per_ip_window),
            login_per_email=Limit(
                "login_email", s.login_failures_per_email, s.login_per_email_window
            ),
        )


class Services:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = Metrics(settings.build)
        self.db = Db(settings.database)
        self.kv = Kv(settings.redis)
        self.limiter = RateLimiter(self.kv, self.clock)
        self.limits = Limits.from_settings(settings)
        self.cache = Cache(
            self.kv,
            self.metrics,
            settings.cache_ttl,
            namespaces=("products", "categories"),
            sync_interval=settings.cache_sync_interval,
        )
        self.throttle = SharedThrottle(
            self.kv, self.clock, self.limits.per_ip, settings.limits.sync_interval
        )
        self.presence = Presence(self.kv, self.clock, settings.active_user_window)
        self.passwords = Passwords(settings.auth)
        self.auth = Authenticator(self.db, self.kv, self.clock, self.presence, settings.auth)

    async def start(self) -> None:
        """Connect to PostgreSQL (retrying until the start-up timeout), migrate if configured."""
        deadline = time.monotonic() + self.settings.server.startup_timeout
        url = redact_url(self.settings.database.url)
        while True:
            try:
                await self.db.connect()
                break
            except StoreUnavailable as exc:
                if time.monotonic() >= deadline:
                    raise
                logger.warning("waiting for PostgreSQL at {}: {}", url, exc.reason)
                await asyncio.sleep(1.0)
        if self.settings.database.migrate_on_start:
            await asyncio.to_thread(migrate.upgrade, self.settings.database.url)
        logger.info("connected to PostgreSQL at {}", url)
        self.cache.start()
        self.throttle.start()

    async def stop(self) -> None:
        await self.throttle.stop()
        await self.cache.stop()
        await self.db.disconnect()
        await self.kv.close()
