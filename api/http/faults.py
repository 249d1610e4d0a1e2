"""The request-level faults of ``API_FAULT`` (test builds only): forced 500s and slow answers.

The innermost middleware, added only when a fault is set, so production requests never pass it.
It sits inside ``RequestContextMiddleware``, so what it does is counted, timed and logged like any
other response:

- ``errors=/prefix``: the request answers 500 with the usual JSON error body, without running the
  handler. The route is matched first (as the router would) so ``http_requests_total`` carries the
  route template (``/products/{product_id}``), not ``unmatched``;
- ``slow=N``: the response is held back by ``(N - 1)`` times what the handler took until it began
  to answer, at least ``(N - 1) x 50 ms``, so latency (p95 included) is about ``N`` times the
  normal one and even the fastest routes are measurably slow.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError
from api.faults import Fault
from api.http.errors import error_response

#: the least time a slowed handler counts as having taken, so fast routes become slow as well
SLOW_FLOOR_SECONDS = 0.05


class InjectedFault(ApiError):
    status, code = 500, "injected_fault"

    def __init__(self, prefix: str) -> None:
        super().__init__(f"API_FAULT errors={prefix}: this test build fails here on purpose")


class FaultMiddleware:
    def __init__(self, app: ASGIApp, fault: Fault, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.prefixes = fault.error_prefixes
        self.extra = fault.slowdown - 1.0
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.extra > 0:
            send = self._delayed(send)
        prefix = next((p for p in self.prefixes if scope["path"].startswith(p)), None)
        if prefix is None:
            await self.app(scope, receive, send)
            return
        self._match_route(scope)
        await error_response(InjectedFault(prefix))(scope, receive, send)

    def _delayed(self, send: Send) -> Send:
        start = time.perf_counter()

        async def delayed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = time.perf_counter() - start
                await asyncio.sleep(self.extra * max(took, SLOW_FLOOR_SECONDS))
            await send(message)

        return delayed_send

    def _match_route(self, scope: Scope) -> None:
        """Record the route the router would pick, for the metrics' and access log's labels."""
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                return
            if match is Match.PARTIAL and partial is None:
                partial = route  # the path matches, the method does not
        if partial is not None:
            scope["route"] = partial
