"""Health, version, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from starlette.responses import Response

from api.db.migrate import head_revision
from api.http.endpoint import JSON, Call, Operation, endpoint, json_response
from api.metrics import CONTENT_TYPE
from api.schemas.health import Live, Ready, Version
from api.services import Services

_CHECK_TIMEOUT = 2.0


@endpoint(
    Operation(
        "live",
        "The process is up",
        "health",
        response=Live,
        rate_limited=False,
        uses_storage=False,
    )
)
async def live(call: Call) -> Live:
    return Live()


async def _check_postgres(services: Services) -> tuple[str, str]:
    if not services.db.connected:
        return "not connected", "unknown"
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            current = await services.db.fetch_val(
                sa.text("SELECT version_num FROM alembic_version")
            )
    except TimeoutError:
        return f"no answer within {_CHECK_TIMEOUT:g} s", "unknown"
    except Exception as exc:  # any failure means not ready; say which
        if type(exc).__name__ == "UndefinedTableError":
            return "ok", "not migrated"
        return str(getattr(exc, "reason", None) or type(exc).__name__), "unknown"
    expected = head_revision()
    if current != expected:
        return "ok", f"at revision {current}, this build expects {expected}"
    return "ok", "ok"


async def _check_redis(services: Services) -> str:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            await services.kv.ping()
    except TimeoutError:
        return f"no answer within {_CHECK_TIMEOUT:g} s"
    except Exception as exc:
        return getattr(exc, "reason", None) or type(exc).__name__
    return "ok"


@endpoint(
    Operation(
        "ready",
        "PostgreSQL and Redis answer and the schema is migrated",
        "health",
        response=Ready,
        extra_responses={503: Ready},
        description="503 names the failing part in `checks`.",
        rate_limited=False,
        uses_storage=False,
    )
)
async def ready(call: Call) -> Response:
    (postgres, schema), redis = await asyncio.gather(
        _check_postgres(call.services), _check_redis(call.services)
    )
    checks = {"postgres": postgres, "redis": redis, "schema": schema}
    healthy = all(value == "ok" for value in checks.values())
    body = Ready(status="ok" if healthy else "unavailable", checks=checks)
    return json_response(body, 200 if healthy else 503)


@endpoint(
    Operation(
        "version",
        "Version, git revision and image tag",
        "meta",
        response=Version,
        rate_limited=False,
        uses_storage=False,
    )
)
async def version(call: Call) -> Version:
    settings = call.services.settings
    build = settings.build
    wrong = settings.fault.version  # API_FAULT=version=X (test builds only): it claims to be X
    if wrong:
        return Version(version=wrong, revision=build.revision, image_tag=wrong)
    return Version(version=build.version, revision=build.revision, image_tag=build.image_tag)


@endpoint(
    Operation(
        "metrics",
        "Prometheus metrics of this process",
        "meta",
        media_type=CONTENT_TYPE,
        rate_limited=False,
        uses_storage=False,
    )
)
async def metrics(call: Call) -> Response:
    services = call.services
    active = await services.presence.count()
    if active is not None:
        services.metrics.active_users.set(active)
    return Response(services.metrics.render(), media_type=CONTENT_TYPE)


@endpoint(
    Operation(
        "openapi",
        "This OpenAPI document",
        "meta",
        media_type=JSON,
        uses_storage=False,
    )
)
async def openapi(call: Call) -> Response:
    from api.http.openapi import document_bytes

    return Response(document_bytes(call.request.app), media_type=JSON)
