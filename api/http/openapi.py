"""The OpenAPI 3.1 document, generated from the app's real routes and their pydantic models."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.routing import Route
from starlette.types import ASGIApp

from api import __version__
from api.http.endpoint import JSON, Auth, Operation, operation_of
from api.http.resource import handlers_of
from api.schemas.common import ErrorBody

_REF = "#/components/schemas/{model}"
_DESCRIPTIONS = {
    200: "OK",
    201: "Created",
    204: "No content",
    400: "The body is not JSON",
    401: "No valid bearer token",
    403: "Not allowed for this user",
    404: "Not found",
    409: "Conflicts with existing data",
    413: "The body is too large",
    415: "The body is not application/json",
    422: "A parameter or body field is invalid",
    429: "Rate limited; retry after `Retry-After` seconds",
    503: "PostgreSQL or Redis is unavailable; retry after `Retry-After` seconds",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait",
        "schema": {"type": "string"},
        "required": True,
    }
}
# the `$ref` of a model's schema in one mode, from the document's components
_SchemaOf = Callable[[type[BaseModel], JsonSchemaMode], dict[str, Any]]


def _operations(routes: list[Any]) -> list[tuple[str, str, Operation]]:
    found = []
    for route in routes:
        if not isinstance(route, Route):
            continue
        for method, handler in handlers_of(route).items():
            op = operation_of(handler)
            if op is not None:
                found.append((route.path, method.lower(), op))
    return found


def _models(ops: list[tuple[str, str, Operation]]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    models: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (ErrorBody, "serialization"): None
    }
    for _, _, op in ops:
        for model in (op.body,):
            if model is not None:
                models[(model, "validation")] = None
        for model in (op.response, *op.extra_responses.values()):
            if model is not None:
                models[(model, "serialization")] = None
    return list(models)


def _parameters(model: type[BaseModel] | None, where: str) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": name in required or where == "path",
            "schema": prop,
        }
        if description:
            param["description"] = description
        params.append(param)
    return params


def _ok_response(op: Operation, schema: _SchemaOf) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": _DESCRIPTIONS.get(op.status, "OK")}
    if op.response is not None:
        ok["content"] = {JSON: {"schema": schema(op.response, "serialization")}}
    elif op.status != 204:
        ok["content"] = {
            op.media_type: {
                "schema": {"type": "string"} if op.media_type != JSON else {"type": "object"}
            }
        }
    return ok


def _error_response(status: int, error_ref: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _DESCRIPTIONS[status],
        "content": {JSON: {"schema": error_ref}},
    }
    if status in (429, 503):
        response["headers"] = _RETRY_AFTER
    return response


def _responses(op: Operation, schema: _SchemaOf) -> dict[str, Any]:
    """The success response, then the operation's own documented ones, then its errors."""
    responses: dict[str, Any] = {str(op.status): _ok_response(op, schema)}
    for status, model in op.extra_responses.items():
        responses[str(status)] = {
            "description": _DESCRIPTIONS.get(status, "Error"),
            "content": {JSON: {"schema": schema(model, "serialization")}},
        }
    error_ref = schema(ErrorBody, "serialization")
    for status in op.error_statuses():
        responses.setdefault(str(status), _error_response(status, error_ref))
    return responses


def _entry(op: Operation, schema: _SchemaOf) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": _parameters(op.path, "path") + _parameters(op.query, "query"),
        "responses": _responses(op, schema),
    }
    if op.description:
        entry["description"] = op.description
    if op.body is not None:
        entry["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": schema(op.body, "validation")}},
        }
    if op.auth is not Auth.NONE:
        entry["security"] = [{"bearerAuth": []}]
    return entry


def build_document(app: ASGIApp) -> dict[str, Any]:
    ops = _operations(list(getattr(app, "routes", [])))
    refs, defs = models_json_schema(_models(ops), ref_template=_REF)

    def schema(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return refs[(model, mode)]

    paths: dict[str, dict[str, Any]] = {}
    for path, method, op in ops:
        paths.setdefault(path, {})[method] = _entry(op, schema)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Driftless shop API",
            "version": __version__,
            "description": "Users, categories and products on PostgreSQL and Redis. Errors are "
            '`{"error": ..., "detail": ...}`.',
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "from POST /auth/login",
                }
            },
        },
    }


def document_bytes(app: ASGIApp) -> bytes:
    state = getattr(app, "state", None)
    cached = getattr(state, "openapi_bytes", None)
    if cached is None:
        cached = json.dumps(build_document(app), separators=(",", ":")).encode()
        if state is not None:
            state.openapi_bytes = cached
    return bytes(cached)
