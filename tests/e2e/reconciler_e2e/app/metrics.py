"""The app's Prometheus metrics in the text exposition format, by hand (no prometheus_client).

``app_build_info{version}`` (always 1), ``http_requests_total{route,status}`` and the histogram
``http_request_duration_seconds{route}`` with buckets from 5 ms to 10 s. Thread-safe: the server
handles each request on its own thread.
"""

from __future__ import annotations

import threading
from collections import defaultdict

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


class Metrics:
    def __init__(self, version: str) -> None:
        self.version = version
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = defaultdict(int)
        # per route: a count per bucket (not cumulative), the +Inf overflow, the sum
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = defaultdict(float)

    def observe(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(route, str(status))] += 1
            counts = self._buckets.setdefault(route, [0] * (len(BUCKETS) + 1))
            counts[next((i for i, le in enumerate(BUCKETS) if seconds <= le), len(BUCKETS))] += 1
            self._sums[route] += seconds

    def render(self) -> bytes:
        lines = [
            "# HELP app_build_info Always 1; the label says which build is running.",
            "# TYPE app_build_info gauge",
            f"app_build_info{_labels(version=self.version)} 1",
            "# HELP http_requests_total HTTP requests by route and status code.",
            "# TYPE http_requests_total counter",
        ]
        with self._lock:
            for (route, status), count in sorted(self._requests.items()):
                lines.append(f"http_requests_total{_labels(route=route, status=status)} {count}")
            lines += [
                "# HELP http_request_duration_seconds Time to answer a request.",
                "# TYPE http_request_duration_seconds histogram",
            ]
            for route, counts in sorted(self._buckets.items()):
                lines += self._histogram(route, counts, self._sums[route])
        return ("\n".join(lines) + "\n").encode()

    @staticmethod
    def _histogram(route: str, counts: list[int], total: float) -> list[str]:
        name = "http_request_duration_seconds"
        lines = []
        cumulative = 0
        # le as prometheus_client writes it ("10.0"), so the API's and the app's series agree
        for le, count in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
            cumulative += count
            lines.append(f"{name}_bucket{_labels(route=route, le=le)} {cumulative}")
        lines.append(f"{name}_sum{_labels(route=route)} {total!r}")
        lines.append(f"{name}_count{_labels(route=route)} {cumulative}")
        return lines
