"""Prometheus metrics of one API process, in its own registry (names: docs/interfaces.md).

Labels are bounded: routes are templates (``/products/{product_id}``), never raw paths, ids or
e-mails; countries are ISO 3166 codes or ``unknown``; caches and results are fixed sets.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import (
    GC_COLLECTOR as _GC,
)
from prometheus_client import (
    PLATFORM_COLLECTOR as _PLATFORM,
)
from prometheus_client import (
    PROCESS_COLLECTOR as _PROCESS,
)

from api.settings import BuildInfo

# resolves p50/p95/p99 from 5 ms to 5 s (roughly x1.5 steps)
DURATION_BUCKETS = (
    0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0,
)  # fmt: skip
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, build: BuildInfo) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: they double the series count for nothing
        self.registry = registry = CollectorRegistry(auto_describe=True)
        for collector in (_PROCESS, _PLATFORM, _GC):
            registry.register(collector)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status code.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from request start to the end of the response body.",
            ("method", "route"),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "HTTP requests being served now.", registry=registry
        )
        self.active_users = Gauge(
            "api_active_users",
            "Signed-in users seen in the last 5 minutes (shared by every replica).",
            registry=registry,
        )
        self.registrations = Counter(
            "api_user_registrations", "Users who registered.", registry=registry
        )
        self.products_created = Counter(
            "api_products_created", "Products created, by category id.", ("category",),
            registry=registry,
        )  # fmt: skip
        self.login_attempts = Counter(
            "api_login_attempts",
            "Login attempts by result: success, failure or rate_limited.",
            ("result",),
            registry=registry,
        )
        # exported at 0 from the start: increase() cannot see a series' first value, so a burst of
        # failures in a fresh process would otherwise never reach the failed-logins alert
        for result in ("success", "failure", "rate_limited"):
            self.login_attempts.labels(result)
        self.requests_by_country = Counter(
            "api_requests_by_country",
            "Requests by client country (ISO 3166 alpha-2 from the load balancer, or unknown).",
            ("country",),
            registry=registry,
        )
        self.cache_requests = Counter(
            "api_cache_requests",
            "Cache lookups by cache and result (hit or miss).",
            ("cache", "result"),
            registry=registry,
        )
        self.build_info = Gauge(
            "api_build_info",
            "Always 1; the labels say which build is running.",
            ("version", "revision", "image_tag"),
            registry=registry,
        )
        self.build_info.labels(build.version, build.revision, build.image_tag).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
