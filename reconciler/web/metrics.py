"""The HTTP server's own metrics (``GET /metrics`` serves them after the engine's).

They live in a registry of their own so that the engine's registry stays the engine's; both
carry the ``stack`` and ``environment`` labels (docs/interfaces.md).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class ServerMetrics:
    def __init__(self, stack: str, environment: str) -> None:
        self.registry = CollectorRegistry()
        self._base = {"stack": stack, "environment": environment}
        base = ["stack", "environment"]
        self.requests = Counter(
            "reconciler_http_requests_total",
            "HTTP requests served by the reconciler (status page, JSON API, webhooks)",
            [*base, "method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "reconciler_http_request_duration_seconds",
            "Time to answer an HTTP request",
            [*base, "method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.webhooks = Counter(
            "reconciler_webhooks_total",
            "Push webhooks received, by source and what was done with them",
            [*base, "source", "result"],
            registry=self.registry,
        )
        for source in ("github", "gitlab"):
            for result in ("accepted", "ignored", "rejected"):
                self.webhooks.labels(**self._base, source=source, result=result)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(**self._base, method=method, route=route, status=str(status)).inc()
        self.duration.labels(**self._base, method=method, route=route).observe(seconds)

    def webhook(self, source: str, result: str) -> None:
        self.webhooks.labels(**self._base, source=source, result=result).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
