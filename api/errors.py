"""Errors the API raises, typed by what the client should see.

A leaf module: it imports nothing else of the package. Third-party exceptions (asyncpg, redis,
argon2) are translated into these at the adapter edge with ``raise ... from exc``; the HTTP layer
turns each into a ``{"error": ..., "detail": ...}`` body with the status code below.
"""

from __future__ import annotations

from dataclasses import dataclass


class SettingsError(Exception):
    """The environment does not describe a runnable configuration (the process exits with 2)."""


@dataclass(frozen=True)
class FieldIssue:
    """One problem with one input field: where it is and what is wrong."""

    loc: str
    msg: str


class ApiError(Exception):
    """An error a client may cause or observe; ``status`` and ``code`` go into the response."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        fields: tuple[FieldIssue, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class InvalidJson(ApiError):
    status, code = 400, "invalid_json"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self, detail: str = "authentication required") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="driftless"'})


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(ApiError):
    status, code = 422, "validation_failed"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class DependencyUnavailable(ApiError):
    """PostgreSQL or Redis cannot be reached; the client may retry (503, not a bug)."""

    status, code = 503, "unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class StoreUnavailable(Exception):
    """PostgreSQL or Redis did not answer (translated from the client library's errors)."""

    def __init__(self, component: str, reason: str) -> None:
        super().__init__(f"{component} unavailable: {reason}")
        self.component = component
        self.reason = reason


class IntegrityViolation(Exception):
    """A write broke a database constraint; ``constraint`` names it (see ``db.tables``)."""

    def __init__(self, constraint: str | None, kind: str) -> None:
        super().__init__(f"{kind} violation of {constraint}")
        self.constraint = constraint
        self.kind = kind
