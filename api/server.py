"""``api serve``: uvicorn with a graceful SIGTERM drain.

On SIGTERM (``docker stop``, a Swarm rolling update) uvicorn stops accepting connections, closes
idle keep-alive connections, lets in-flight requests finish for up to ``SHUTDOWN_TIMEOUT_SECONDS``,
then runs the app's shutdown, which closes the PostgreSQL and Redis pools. Set the service's
``stop_grace_period`` above that timeout.

A test build with ``API_FAULT`` says so in a WARNING at start-up; with ``crash-after=N`` it logs an
ERROR and exits with ``CRASH_STATUS`` (at once, no drain: a crash) N seconds after it began serving.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import uvicorn
from loguru import logger

from api.app import create_app
from api.settings import Settings, redact_url

CRASH_STATUS = 3


class _Server(uvicorn.Server):
    """uvicorn's server; with ``crash_after`` it crashes that many seconds after it started."""

    def __init__(self, config: uvicorn.Config, crash_after: float | None) -> None:
        super().__init__(config)
        self.crash_after = crash_after

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.crash_after is not None:
            asyncio.get_running_loop().call_later(self.crash_after, _crash, self.crash_after)


def _crash(after: float) -> None:
    logger.error(
        "API_FAULT crash-after={:g}s: crashing on purpose with exit status {}", after, CRASH_STATUS
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(CRASH_STATUS)


def serve(settings: Settings) -> int:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        lifespan="on",
        log_config=None,  # logging is configured already (JSON through loguru)
        access_log=False,  # the app logs each request itself, with trace ids
        proxy_headers=False,  # the app resolves X-Forwarded-For against TRUSTED_PROXIES
        server_header=False,
        timeout_graceful_shutdown=int(settings.server.shutdown_timeout) or None,
        timeout_keep_alive=75,  # longer than Nginx's upstream keepalive_timeout (60 s)
    )
    logger.info(
        "serving on {}:{} ({}, version {}, database {}, redis {})",
        settings.server.host,
        settings.server.port,
        settings.environment,
        settings.build.version,
        redact_url(settings.database.url),
        redact_url(settings.redis.url),
    )
    if settings.fault.active:
        logger.warning(
            "API_FAULT={}: this is a test build that fails on purpose; never serve users with it",
            settings.fault.describe(),
        )
    server = _Server(config, settings.fault.crash_after)
    server.run()
    return 0 if server.started else 1
