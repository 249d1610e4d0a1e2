"""The application factory: settings in, a Starlette app out. Nothing connects until start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from api.clock import Clock
from api.http.context import RequestContextMiddleware
from api.http.errors import HANDLERS
from api.http.faults import FaultMiddleware
from api.http.limits import BodyLimitMiddleware, RateLimitMiddleware
from api.routes import all_routes
from api.services import Services
from api.settings import Settings


def create_app(settings: Settings, clock: Clock | None = None) -> Starlette:
    services = Services(settings, clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    middleware = [Middleware(RequestContextMiddleware, services=services)]
    if settings.http.cors_allow_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.http.cors_allow_origins),
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["authorization", "content-type", "traceparent", "x-request-id"],
                expose_headers=["retry-after", "x-request-id", "x-trace-id"],
                max_age=600,
            )
        )
    middleware += [
        Middleware(RateLimitMiddleware, services=services),
        Middleware(BodyLimitMiddleware, max_bytes=settings.http.max_body_bytes),
    ]
    routes = all_routes()
    fault = settings.fault
    if fault.error_prefixes or fault.slowdown > 1:  # API_FAULT, test builds only
        middleware.append(Middleware(FaultMiddleware, fault=fault, routes=routes))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=dict(HANDLERS),
        lifespan=lifespan,
    )
    app.state.services = services
    return app
