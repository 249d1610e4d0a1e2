"""Exception handlers: every error leaves as ``{"error": ..., "detail": ...}`` JSON."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.errors import ApiError, DependencyUnavailable, StoreUnavailable
from api.http.endpoint import JSON
from api.schemas.common import ErrorBody, FieldError

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def error_response(exc: ApiError) -> Response:
    body = ErrorBody(
        error=exc.code,
        detail=exc.detail,
        fields=[FieldError(loc=f.loc, msg=f.msg) for f in exc.fields] or None,
    )
    return Response(body.model_dump_json(exclude_none=True), exc.status, exc.headers, JSON)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def store_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreUnavailable)
    return error_response(
        DependencyUnavailable(f"{exc.component} is unavailable; try again shortly")
    )


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no route: 404, wrong method: 405) in our error format."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        detail = f"no such path: {request.url.path}"[:300]
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed here"
    else:
        detail = str(exc.detail)
    body = ErrorBody(error=_HTTP_CODES.get(exc.status_code, "http_error"), detail=detail)
    return Response(body.model_dump_json(exclude_none=True), exc.status_code, exc.headers, JSON)


HANDLERS = {
    ApiError: api_error,
    StoreUnavailable: store_unavailable,
    HTTPException: http_exception,
}
