"""Endpoints declared with an ``Operation``: one description drives validation, auth and OpenAPI.

``@endpoint(Operation(...))`` wraps a handler that takes a ``Call``. Before the handler runs, the
wrapper authenticates the caller as the operation requires, validates path and query parameters
and the JSON body with the declared pydantic models, and afterwards serialises the returned model
with the declared status. ``api.http.openapi`` reads the same ``Operation`` objects from the real
routes, so the document cannot drift from what the code enforces.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from api.errors import FieldIssue, InvalidJson, UnsupportedMediaType, ValidationFailed

if TYPE_CHECKING:
    from api.auth import Principal
    from api.services import Services

M = TypeVar("M", bound=BaseModel)
JSON = "application/json"


class Auth(Enum):
    NONE = "none"
    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True)
class Operation:
    operation_id: str
    summary: str
    tag: str
    status: int = 200
    response: type[BaseModel] | None = None  # None: no body
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path: type[BaseModel] | None = None
    auth: Auth = Auth.NONE
    errors: tuple[int, ...] = ()  # statuses beyond those implied by auth, body and parameters
    extra_responses: Mapping[int, type[BaseModel]] = field(default_factory=dict)
    media_type: str = JSON
    description: str = ""
    rate_limited: bool = True  # subject to the global per-IP limit
    uses_storage: bool = True  # may answer 503 when PostgreSQL or Redis is down

    def error_statuses(self) -> list[int]:
        statuses = set(self.errors)
        if self.auth is not Auth.NONE:
            statuses.add(401)
        if self.auth is Auth.ADMIN:
            statuses.add(403)
        if self.body is not None:
            statuses |= {400, 413, 415, 422}
        if self.query is not None or self.path is not None:
            statuses.add(422)
        if self.rate_limited:
            statuses.add(429)
        if self.uses_storage:
            statuses.add(503)
        return sorted(statuses)


@dataclass
class Call:
    request: Request
    services: Services
    principal: Principal | None
    path: BaseModel | None
    query: BaseModel | None
    body: BaseModel | None

    @property
    def user(self) -> Principal:
        assert self.principal is not None, "the operation does not require authentication"
        return self.principal

    def path_as(self, model: type[M]) -> M:
        assert isinstance(self.path, model)
        return self.path

    def query_as(self, model: type[M]) -> M:
        assert isinstance(self.query, model)
        return self.query

    def body_as(self, model: type[M]) -> M:
        assert isinstance(self.body, model)
        return self.body


Result = Response | BaseModel | None
Handler = Callable[[Call], Awaitable[Result]]
Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
                  ) -> Response:  # fmt: skip
    return Response(model.model_dump_json(), status, headers, JSON)


def endpoint(op: Operation) -> Callable[[Handler], Endpoint]:
    def wrap(handler: Handler) -> Endpoint:
        async def run(request: Request) -> Response:
            services: Services = request.app.state.services
            principal = None
            if op.auth is not Auth.NONE:
                principal = await services.auth.authenticate(
                    request.headers.get("authorization"), admin=op.auth is Auth.ADMIN
                )
                request.state.user_id = principal.user_id
            call = Call(
                request=request,
                services=services,
                principal=principal,
                path=_parse(op.path, request.path_params, "path"),
                query=_parse(op.query, request.query_params, "query"),
                body=await _read_body(op.body, request) if op.body is not None else None,
            )
            result = await handler(call)
            if isinstance(result, Response):
                return result
            if result is None:
                return Response(status_code=op.status)
            return json_response(result, op.status)

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        run.__operation__ = op  # type: ignore[attr-defined]
        return run

    return wrap


def operation_of(endpoint_fn: Any) -> Operation | None:
    op = getattr(endpoint_fn, "__operation__", None)
    return op if isinstance(op, Operation) else None


def issues(exc: ValidationError, source: str) -> tuple[FieldIssue, ...]:
    found = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = ".".join([source, *(str(part) for part in error["loc"])])
        found.append(FieldIssue(loc, error["msg"]))
    return tuple(found)


def _parse(
    model: type[BaseModel] | None, values: Mapping[str, str], source: str
) -> BaseModel | None:
    if model is None:
        return None
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        raise ValidationFailed(f"invalid {source} parameters", fields=issues(exc, source)) from exc


async def _read_body(model: type[BaseModel], request: Request) -> BaseModel:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != JSON:
        raise UnsupportedMediaType("send the body as application/json")
    raw = await request.body()
    if not raw.strip():
        raise InvalidJson("the request body is empty; send a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise InvalidJson("the request body is not valid JSON") from exc
        raise ValidationFailed("invalid request body", fields=issues(exc, "body")) from exc
