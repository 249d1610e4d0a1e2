"""One Starlette route per path, dispatching on the method.

Starlette answers 405 for a path whose methods are spread over several routes with only the first
route's methods in ``Allow``; one route per path keeps ``Allow`` complete.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.http.endpoint import Endpoint


def resource(path: str, **handlers: Endpoint) -> Route:
    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    dispatch.__name__ = "resource_" + path.strip("/").replace("/", "_").replace("{", "").replace(
        "}", ""
    )
    dispatch.__handlers__ = handlers  # type: ignore[attr-defined]
    return Route(path, dispatch, methods=list(handlers))


def handlers_of(route: Route) -> dict[str, Endpoint]:
    found = getattr(route.endpoint, "__handlers__", None)
    return dict(found) if isinstance(found, dict) else {}
