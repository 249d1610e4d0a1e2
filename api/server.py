"""``api serve``: uvicorn with a graceful SIGTERM drain.

On SIGTERM (``docker stop``, a Swarm rolling update) uvicorn stops accepting connections, closes
idle keep-alive connections, lets in-flight requests finish for up to ``SHUTDOWN_TIMEOUT_SECONDS``,
then runs the app's shutdown, which closes the PostgreSQL and Redis pools. Set the service's
``stop_grace_period`` above that timeout.
"""

from __future__ import annotations

import uvicorn
from loguru import logger

from api.app import create_app
from api.settings import Settings, redact_url


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
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
