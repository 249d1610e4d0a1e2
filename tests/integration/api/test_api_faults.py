"""``API_FAULT`` on the real app: what a canary analysis of a faulty test build gets to see.

Wrong ``/version`` (with a truthful ``api_build_info``), 500s counted under their route, slow
responses in the latency histogram, a WARNING at start-up and a crash after the set time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
from apitest_helpers import ApiFactory, Served
from prometheus_client.parser import text_string_to_metric_families

from api.http.faults import SLOW_FLOOR_SECONDS
from api.server import CRASH_STATUS


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _value(text: str, name: str, **labels: str) -> float:
    return sum(
        value
        for found, value in _samples(text, name)
        if all(found.get(key) == wanted for key, wanted in labels.items())
    )


async def test_version_reports_the_fault_and_build_info_the_truth(make_api: ApiFactory) -> None:
    env = {"APP_VERSION": "1.4.0", "IMAGE_TAG": "sha-new", "API_FAULT": "version=1.3.0"}
    async with make_api(**env) as api:
        version = (await api.client.get("/version")).json()
        metrics = (await api.client.get("/metrics")).text
    assert version == {"version": "1.3.0", "revision": "unknown", "image_tag": "1.3.0"}
    assert _samples(metrics, "api_build_info") == [
        ({"version": "1.4.0", "revision": "unknown", "image_tag": "sha-new"}, 1.0)
    ]


async def test_errors_answer_500_under_the_prefix_and_count_by_route(make_api: ApiFactory) -> None:
    async with make_api(API_FAULT="errors=/products") as api:
        client = api.client
        listed = [await client.get("/products") for _ in range(3)]
        item = await client.get("/products/42")
        created = await client.post("/products", json={"name": "x"})  # unauthenticated: 401 else
        categories = await client.get("/categories")
        live = await client.get("/health/live")
        metrics = (await client.get("/metrics")).text

    for response in [*listed, item, created]:
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["error"] == "injected_fault"
        assert "errors=/products" in body["detail"]
        assert response.headers["x-request-id"]  # served through the usual middleware
    assert categories.status_code == 200
    assert live.status_code == 200

    def count(route: str, status: str, method: str = "GET") -> float:
        return _value(metrics, "http_requests_total", method=method, route=route, status=status)

    assert count("/products", "500") == 3
    assert count("/products/{product_id}", "500") == 1
    assert count("/products", "500", method="POST") == 1
    assert count("/categories", "200") == 1
    assert count("/products", "200") == 0
    assert count("unmatched", "500") == 0


async def test_slow_responses_show_in_the_latency_histogram(make_api: ApiFactory) -> None:
    async with make_api(API_FAULT="slow=4") as api:
        client = api.client
        start = time.perf_counter()
        for _ in range(3):
            assert (await client.get("/health/live")).status_code == 200
        took = (time.perf_counter() - start) / 3
        metrics = (await client.get("/metrics")).text

    floor = 3 * SLOW_FLOOR_SECONDS  # (4 - 1) x 50 ms even for a route that takes a millisecond
    assert floor <= took < floor + 0.25
    labels = {"method": "GET", "route": "/health/live"}
    assert _value(metrics, "http_request_duration_seconds_count", **labels) == 3
    assert _value(metrics, "http_request_duration_seconds_sum", **labels) >= 3 * floor
    # every one of them is above 100 ms: the p95 moved with them
    assert _value(metrics, "http_request_duration_seconds_bucket", le="0.1", **labels) == 0
    assert _value(metrics, "http_request_duration_seconds_bucket", le="0.3", **labels) == 3


async def test_no_fault_leaves_requests_fast_and_the_version_true(make_api: ApiFactory) -> None:
    async with make_api(APP_VERSION="1.4.0") as api:
        start = time.perf_counter()
        live = await api.client.get("/health/live")
        took = time.perf_counter() - start
        version = (await api.client.get("/version")).json()
        products = await api.client.get("/products")
    assert live.status_code == 200
    assert took < SLOW_FLOOR_SECONDS
    assert version["version"] == "1.4.0"
    assert products.status_code == 200


def test_crash_after_logs_an_error_and_exits_non_zero(
    serve_api: Callable[..., Served],
) -> None:
    served = serve_api({"API_FAULT": "crash-after=2s,version=0.0.1"})
    started = time.monotonic()
    assert httpx.get(f"{served.url}/version", timeout=5).json()["version"] == "0.0.1"
    status = served.process.wait(15)
    lived = time.monotonic() - started

    assert status == CRASH_STATUS != 0
    assert lived < 2.5  # counted from when it began serving, not from the first request
    records = [json.loads(line) for line in served.lines()]
    warnings = [r for r in records if r["level"] == "WARNING" and "API_FAULT" in r["message"]]
    assert len(warnings) == 1
    assert "crash-after=2s" in warnings[0]["message"]
    assert "version=0.0.1" in warnings[0]["message"]
    assert records[-1]["level"] == "ERROR"
    assert "crash-after=2s" in records[-1]["message"]
    assert f"exit status {CRASH_STATUS}" in records[-1]["message"]


def test_no_warning_without_a_fault(serve_api: Callable[..., Served]) -> None:
    served = serve_api()
    assert httpx.get(f"{served.url}/health/live", timeout=5).status_code == 200
    assert not any("API_FAULT" in line for line in served.lines())
