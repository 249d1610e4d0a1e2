"""The global per-IP rate limit and the request body size limit (pure ASGI middleware)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLarge, RateLimited
from api.http.errors import error_response

if TYPE_CHECKING:
    from api.services import Services

# probes and scrapes are never limited: a limited health check would take a replica out
EXEMPT_PREFIXES = ("/health/", "/metrics", "/version")


class RateLimitMiddleware:
    """The global per-client limit (``api.throttle``: decided in-process, shared via Redis)."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.throttle = services.throttle
        self.limit = services.limits.per_ip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.limit.enabled
            and not scope["path"].startswith(EXEMPT_PREFIXES)
        ):
            client = (scope.get("client") or ("unknown", 0))[0]
            decision = await self.throttle.check(client)
            if not decision.allowed:
                error = RateLimited(
                    "too many requests from this address", retry_after=decision.retry_after
                )
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for a body over ``MAX_BODY_BYTES``: by Content-Length up front, or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLarge(f"the request body must not exceed {self.max_bytes} bytes")
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await error_response(too_large)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await error_response(too_large)(scope, receive, send)
