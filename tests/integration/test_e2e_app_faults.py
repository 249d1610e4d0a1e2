"""The reconciler e2e tests' tiny service, run as a plain process on loopback (no Docker).

Its routes, its Prometheus metrics (parsed with prometheus_client's own parser, so the hand-written
exposition format is checked too), ``APP_MODE=bad`` as the e2e tests rely on it, and each
``APP_FAULT`` mode a canary analysis must catch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.reconciler_support.e2e import APP_DIR, free_port

SERVER = APP_DIR / "server.py"


@dataclass
class App:
    process: subprocess.Popen[bytes]
    url: str
    stderr: Path

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def log(self) -> list[dict[str, str]]:
        return [json.loads(line) for line in self.stderr.read_text().splitlines()]

    def metrics(self, name: str, **labels: str) -> float:
        text = self.get("/metrics").text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )


def _spawn(env: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    stderr = tmp_path / f"app-{port}.log"
    with stderr.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(SERVER)],
            env={"HOST": "127.0.0.1", "PORT": str(port), "APP_VERSION": "5", **env},
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    return process, port, stderr


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[Callable[..., App]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> App:
        process, port, stderr = _spawn(env, tmp_path)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, f"exited with {process.returncode}"
            try:
                httpx.get(url + "/version", timeout=1)
                return App(process, url, stderr)
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the app did not answer within 10 s"
                time.sleep(0.05)

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(10)


def test_routes_and_metrics_without_a_fault(start_app: Callable[..., App]) -> None:
    app = start_app()
    assert app.get("/").status_code == 200
    items = app.get("/items?page=1")
    assert items.status_code == 200
    assert len(items.json()["items"]) == 10
    assert app.get("/health").json() == {"status": "ok"}
    assert app.get("/version").json() == {"version": "5", "mode": "good"}
    assert app.get("/nope/1").status_code == 404

    assert app.metrics("app_build_info", version="5") == 1
    assert app.metrics("http_requests_total", route="/items", status="200") == 1
    assert app.metrics("http_requests_total", route="/", status="200") == 1
    assert app.metrics("http_requests_total", route="unmatched", status="404") == 1
    labels = {"route": "/items"}
    assert app.metrics("http_request_duration_seconds_count", **labels) == 1
    assert app.metrics("http_request_duration_seconds_bucket", le="0.005", **labels) == 0
    assert app.metrics("http_request_duration_seconds_bucket", le="10.0", **labels) == 1
    assert app.metrics("http_request_duration_seconds_bucket", le="+Inf", **labels) == 1
    assert 0.01 <= app.metrics("http_request_duration_seconds_sum", **labels) < 0.5
    assert app.log() == []  # no fault, no warning


def test_bad_mode_still_fails_only_its_health_check(start_app: Callable[..., App]) -> None:
    app = start_app(APP_MODE="bad")
    health = app.get("/health")
    assert health.status_code == 500
    assert "broken" in health.json()["status"]
    assert app.get("/version").json() == {"version": "5", "mode": "bad"}
    assert app.get("/items").status_code == 200
    assert app.metrics("http_requests_total", route="/health", status="500") == 1


def test_errors_answer_500_and_are_counted(start_app: Callable[..., App]) -> None:
    app = start_app(APP_FAULT="errors=/items")
    failed = [app.get("/items") for _ in range(3)]
    assert {r.status_code for r in failed} == {500}
    assert failed[0].json()["error"] == "injected_fault"
    assert app.get("/").status_code == 200
    assert app.get("/health").status_code == 200

    assert app.metrics("http_requests_total", route="/items", status="500") == 3
    assert app.metrics("http_requests_total", route="/items", status="200") == 0
    assert app.metrics("http_requests_total", route="/", status="200") == 1
    assert app.metrics("app_build_info", version="5") == 1
    assert [r["level"] for r in app.log()] == ["WARNING"]
    assert "errors=/items" in app.log()[0]["message"]


def test_version_lies_and_build_info_does_not(start_app: Callable[..., App]) -> None:
    app = start_app(APP_FAULT="version=4")
    assert app.get("/version").json()["version"] == "4"
    assert app.metrics("app_build_info", version="5") == 1
    assert app.metrics("app_build_info", version="4") == 0


def _mean_latency(app: App, path: str, n: int = 5) -> float:
    start = time.perf_counter()
    for _ in range(n):
        assert app.get(path).status_code == 200
    return (time.perf_counter() - start) / n


def test_slow_multiplies_latency(start_app: Callable[..., App]) -> None:
    # Each slowed request waits 3 x what it took itself (at least 50 ms each): the figure does not
    # depend on a second app timed at another moment, which a loaded machine would make flaky.
    slowed_app = start_app(APP_FAULT="slow=4")
    slowed = _mean_latency(slowed_app, "/items")
    assert slowed >= 3 * 0.05
    labels = {"route": "/items"}
    assert slowed_app.metrics("http_request_duration_seconds_count", **labels) == 5
    # every request is above 100 ms in the histogram, so its p95 is too
    assert slowed_app.metrics("http_request_duration_seconds_bucket", le="0.1", **labels) == 0
    assert slowed_app.metrics("http_request_duration_seconds_bucket", le="0.25", **labels) == 5


def test_crash_after_exits_non_zero_with_an_error(start_app: Callable[..., App]) -> None:
    app = start_app(APP_FAULT="crash-after=1s")
    assert app.get("/health").status_code == 200  # serving until then
    assert app.process.wait(10) == 3
    levels = [(r["level"], r["message"]) for r in app.log()]
    assert levels[0][0] == "WARNING"
    assert levels[-1][0] == "ERROR"
    assert "crash-after=1s" in levels[-1][1]


def test_a_malformed_fault_stops_it_at_start_up(tmp_path: Path) -> None:
    process, _, stderr = _spawn({"APP_FAULT": "slow=fast"}, tmp_path)
    assert process.wait(10) == 2
    assert "APP_FAULT='slow=fast': slow=fast: not a number" in stderr.read_text()
