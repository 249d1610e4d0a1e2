"""The outermost middleware: who is asking, trace ids, metrics, the access log, security headers.

Pure ASGI (no per-request ``Request`` objects) because it runs on every request. It

- resolves the client address: when the peer is a trusted proxy (``TRUSTED_PROXIES``), the
  right-most untrusted address of ``X-Forwarded-For``; the country header is trusted likewise;
- takes the trace id from ``traceparent`` (W3C) or ``X-Request-ID``, or makes one, binds it to
  every log line of the request and returns it as ``X-Request-ID`` / ``X-Trace-ID``;
- counts and times the request by method and route template, and logs one JSON access line
  (successes sampled at ``LOG_ACCESS_SAMPLE_RATE``; 4xx as warnings and 5xx as errors, always);
- adds the security headers to every response and turns an unexpected exception into a JSON 500.
"""

from __future__ import annotations

import ipaddress
import random
import re
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from loguru import logger
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.country import UNKNOWN, country_code
from api.logs import access_log
from api.schemas.common import ErrorBody
from api.settings import HttpSettings, IpNetwork

if TYPE_CHECKING:
    from api.services import Services

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_INTERNAL_ERROR = (
    ErrorBody(error="internal_error", detail="the server failed to handle this request")
    .model_dump_json(exclude_none=True)
    .encode()
)


def trace_ids(traceparent: str | None, request_id: str | None) -> tuple[str, str]:
    """(trace id, request id) from the incoming headers; generated where missing or malformed."""
    rid = request_id if request_id and _REQUEST_ID.match(request_id) else None
    trace = None
    if traceparent:
        match = _TRACEPARENT.match(traceparent.strip().lower())
        if match and match.group(1) != "0" * 32:
            trace = match.group(1)
    if trace is None:
        trace = rid or _random_id()
    return trace, rid or _random_id()


def _random_id() -> str:
    # an identifier, not a secret: no system call per request for entropy
    return f"{random.getrandbits(128):032x}"


class ProxyResolver:
    def __init__(self, trusted: tuple[IpNetwork, ...]) -> None:
        self._trusted = trusted
        self.is_trusted = lru_cache(maxsize=4096)(self._is_trusted)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._trusted)

    def client(self, peer: str, forwarded_for: str | None) -> str:
        """The client address: the peer, or the right-most untrusted hop the proxies recorded."""
        if not forwarded_for or not self.is_trusted(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.is_trusted(hop):
                return hop[:64]
        return hops[0][:64] if hops else peer


def security_headers(settings: HttpSettings) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
        (b"cross-origin-resource-policy", b"same-origin"),
    ]
    if settings.hsts_max_age > 0:
        value = f"max-age={settings.hsts_max_age}; includeSubDomains"
        headers.append((b"strict-transport-security", value.encode()))
    return headers


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.metrics = services.metrics
        http = services.settings.http
        self.proxies = ProxyResolver(http.trusted_proxies)
        self.country_header = http.country_header
        self.sample_rate = services.settings.log.access_sample_rate
        self.extra_headers = security_headers(http)
        # label children by (method, route, status): bounded by the routes, looked up once each
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = Headers(scope=scope)
        trace_id, request_id = trace_ids(headers.get("traceparent"), headers.get("x-request-id"))
        peer, port = scope.get("client") or ("unknown", 0)
        client_ip = self.proxies.client(peer, headers.get("x-forwarded-for"))
        scope["client"] = (client_ip, port)
        country = UNKNOWN
        if self.proxies.is_trusted(peer):
            country = country_code(headers.get(self.country_header))
        status = 500
        started = False
        ids = [
            (b"x-request-id", request_id.encode()),
            (b"x-trace-id", trace_id.encode()),
            *self.extra_headers,
        ]

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                MutableHeaders(scope=message).raw.extend(ids)
            await send(message)

        self.metrics.in_flight.inc()
        with logger.contextualize(trace_id=trace_id, request_id=request_id):
            try:
                await self.app(scope, receive, send_wrapper)
            except Exception:
                logger.opt(exception=True).error("unhandled error")
                if not started:
                    await _send_internal_error(send_wrapper)
            finally:
                self.metrics.in_flight.dec()
                duration = time.perf_counter() - start
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                method = scope["method"]
                if method not in _METHODS:
                    method = "other"  # a client may send any token as a method: keep labels bounded
                self._count(method, template, status, country, duration)
                self._access_log(
                    scope, (trace_id, request_id), method, template, status, duration, client_ip,
                    country,
                )  # fmt: skip

    def _count(self, method: str, route: str, status: int, country: str, duration: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            m = self.metrics
            children = self._children[key] = (
                m.requests.labels(method, route, str(status)),
                m.duration.labels(method, route),
            )
        children[0].inc()
        children[1].observe(duration)
        self.metrics.requests_by_country.labels(country).inc()

    def _access_log(self, scope: Scope, ids: tuple[str, str], method: str, route: str, status: int,
                    duration: float, client_ip: str, country: str) -> None:  # fmt: skip
        trace_id, request_id = ids
        if status < 400:
            if self.sample_rate < 1.0 and random.random() >= self.sample_rate:  # noqa: S311
                return
            level = "INFO"
        else:
            level = "WARNING" if status < 500 else "ERROR"
        if not access_log.enabled(level):
            return
        fields: dict[str, object] = {
            "trace_id": trace_id,
            "request_id": request_id,
            "method": method,
            "route": route,
            "path": scope["path"][:200],
            "status": status,
            "duration_ms": round(duration * 1000, 2),
            "client_ip": client_ip,
            "country": country,
        }
        user_id = scope.get("state", {}).get("user_id")
        if user_id is not None:
            fields["user_id"] = user_id
        access_log.write(level, f"{method} {route} {status}", fields)


async def _send_internal_error(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_INTERNAL_ERROR)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _INTERNAL_ERROR})
