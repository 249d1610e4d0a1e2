"""The Prometheus adapter and the production canary queries against a real Prometheus (Debian 13's
2.53, see obs_support.tools) on loopback, scraping, every second, four fake API processes served
from this test: their `http_requests_total{status}`, `http_request_duration_seconds_bucket{le}`
and `api_build_info{image_tag}` are the API's own metric names (api/metrics.py), each process its
own target as Prometheus finds the API's tasks in production.

The queries are read from desired-state/production/analysis.yaml: the ones the stack ships are the
ones tested here. Every fake process serves the same requests at each scrape, so the rates, the
5xx ratios and the p95s (buckets interpolated as histogram_quantile does) are exact:

| image_tag | requests per scrape (status: count) | durations             | 5xx ratio | p95      |
|-----------|-------------------------------------|-----------------------|-----------|----------|
| 2.0       | 200: 85, 404: 5, 500: 10            | half ≤ 0.5 s, all ≤ 1 | 0.1       | 0.95 s   |
| 1.0       | 200: 98, 503: 2                     | 90% ≤ 0.1, all ≤ 0.2  | 0.02      | 0.15 s   |
| 3.0       | 200: 50 (never a 5xx series)        | all in (0.05, 0.1]    | 0         | 0.0975 s |
| 0.9       | none: idle, its counters never move |                       | NaN (0/0) | NaN      |

No Docker: the probe proxy is the real probe_proxy.py, run on loopback.
"""

from __future__ import annotations

import asyncio
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from aiohttp import web
from obs_support.lab import free_port, http_get, wait_until
from reconciler_support.prometheus import Prometheus

from reconciler.adapters.prometheus import PrometheusQueries
from reconciler.analysis import AnalysisSpec, Outcome, expand, measure, parse_analyses
from reconciler.masking import Masker

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = ROOT / "desired-state" / "production"
PROBE_PROXY = ROOT / "reconciler" / "adapters" / "probe_proxy.py"

BUCKETS = ("0.05", "0.1", "0.2", "0.5", "1", "+Inf")
#: the counters start high, so that rate() never extrapolates a series down to zero
BASE = 1000


@dataclass(frozen=True)
class Process:
    """A fake API process: what it serves at each scrape."""

    tag: str
    statuses: dict[str, int]  # status code → requests per scrape
    buckets: tuple[int, ...]  # cumulative observations per scrape, for BUCKETS
    idle: bool = False


PROCESSES = (
    Process("2.0", {"200": 85, "404": 5, "500": 10}, (0, 0, 0, 50, 100, 100)),
    Process("1.0", {"200": 98, "503": 2}, (0, 90, 100, 100, 100, 100)),
    Process("3.0", {"200": 50}, (0, 50, 50, 50, 50, 50)),
    Process("0.9", {"200": 40}, (40, 40, 40, 40, 40, 40), idle=True),
)


def exposition(process: Process, scrapes: int) -> str:
    """The process's /metrics after SCRAPES scrapes (an idle one stays where it started)."""
    n = BASE + (0 if process.idle else scrapes)
    route = 'method="GET",route="/products"'
    lines = ["# TYPE http_requests_total counter"]
    lines += [
        f'http_requests_total{{{route},status="{status}"}} {count * n}'
        for status, count in process.statuses.items()
    ]
    lines.append("# TYPE http_request_duration_seconds histogram")
    lines += [
        f'http_request_duration_seconds_bucket{{{route},le="{le}"}} {count * n}'
        for le, count in zip(BUCKETS, process.buckets, strict=True)
    ]
    lines.append(f"http_request_duration_seconds_sum{{{route}}} {process.buckets[-1] * n * 0.3}")
    lines.append(f"http_request_duration_seconds_count{{{route}}} {process.buckets[-1] * n}")
    lines.append("# TYPE api_build_info gauge")
    lines.append(f'api_build_info{{version="x",revision="r",image_tag="{process.tag}"}} 1')
    return "\n".join(lines) + "\n"


class Servers:
    """aiohttp servers on loopback in a thread of their own (they answer Prometheus's scrapes
    whatever the tests' event loops do): one per fake process, and one that fails with 502."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _serve(self, name: str, handler: web.RequestHandler) -> None:
        app = web.Application()
        app.router.add_get("/{path:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.runners.append(runner)
        self.ports[name] = runner.addresses[0][1]

    async def _start(self) -> None:
        for process in PROCESSES:
            await self._serve(process.tag, self._metrics(process))

        async def bad_gateway(request: web.Request) -> web.Response:
            return web.Response(status=502, text="<html>502 Bad Gateway</html>")

        await self._serve("502", bad_gateway)

    @staticmethod
    def _metrics(process: Process) -> web.RequestHandler:
        scrapes = 0

        async def handler(request: web.Request) -> web.Response:
            nonlocal scrapes
            scrapes += 1
            return web.Response(text=exposition(process, scrapes))

        return handler

    def close(self) -> None:
        async def stop() -> None:
            for runner in self.runners:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    the_servers = Servers()
    the_servers.start()
    yield the_servers
    the_servers.close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, servers: Servers) -> Iterator[str]:
    """The URL of a Prometheus that has scraped every fake process twice (what rate() needs).
    Prometheus 2.x hands its first targets to the scrape loops after about 5 s."""
    targets = [f"127.0.0.1:{servers.ports[p.tag]}" for p in PROCESSES]
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), targets)
    query = (
        'min(count_over_time(up{job="api"}[1m])) >= 2'
        f' and count(up{{job="api"}} == 1) == {len(targets)}'
    )

    def scraped() -> bool:
        body = http_get(f"{server.url}/api/v1/query?{urlencode({'query': query})}", timeout=2)
        return b'"result":[{' in body

    try:
        wait_until("two scrapes of every target", scraped, timeout=30)
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def analyses() -> dict[str, AnalysisSpec]:
    """The api's analyses as the stack ships them."""
    base = PRODUCTION.parent / "base" / "stack.yml"  # every environment's services
    services = set(yaml.safe_load(base.read_text())["services"])
    data = yaml.safe_load((PRODUCTION / "analysis.yaml").read_text())
    return {spec.name: spec for spec in parse_analyses(data, services)["api"]}


def promql(spec: AnalysisSpec, tag: str, stable_tag: str = "1.0") -> str:
    values = {"tag": tag, "stable_tag": stable_tag, "service": "api", "stack": "driftless"}
    return expand(spec.query, values)


async def value_of(prometheus: str, query: str) -> float | None:
    answer = await PrometheusQueries(prometheus, Masker()).query(query)
    assert not answer.bad_query, answer.detail
    return answer.value


# ------------------------------------------------------------------ the production queries


@pytest.mark.parametrize(
    ("tag", "ratio", "outcome"),
    [("2.0", 0.1, Outcome.FAILED), ("1.0", 0.02, Outcome.SUCCESSFUL)],
)
async def test_error_rate_is_the_5xx_share_of_the_canary_s_requests(
    prometheus: str, analyses: dict[str, AnalysisSpec], tag: str, ratio: float, outcome: Outcome
) -> None:
    spec = analyses["error-rate"]
    answer = await PrometheusQueries(prometheus, Masker()).query(promql(spec, tag))
    assert answer.value == pytest.approx(ratio, rel=1e-9)
    assert measure(spec, answer.value, answer.detail, 0.0).outcome is outcome


async def test_a_canary_without_any_5xx_series_has_an_error_rate_of_zero(
    prometheus: str, analyses: dict[str, AnalysisSpec]
) -> None:
    # the API exports a status's series only once it has answered with it
    spec = analyses["error-rate"]
    answer = await PrometheusQueries(prometheus, Masker()).query(promql(spec, "3.0"))
    assert answer.value == 0.0
    assert measure(spec, answer.value, answer.detail, 0.0).outcome is Outcome.SUCCESSFUL


@pytest.mark.parametrize(
    ("tag", "stable_tag", "ratio", "outcome"),
    [
        ("2.0", "1.0", 0.95 / 0.15, Outcome.FAILED),
        ("3.0", "1.0", 0.0975 / 0.15, Outcome.SUCCESSFUL),
        ("1.0", "2.0", 0.15 / 0.95, Outcome.SUCCESSFUL),
    ],
)
async def test_latency_ratio_is_the_canary_s_p95_over_the_stable_s(
    prometheus: str,
    analyses: dict[str, AnalysisSpec],
    tag: str,
    stable_tag: str,
    ratio: float,
    outcome: Outcome,
) -> None:
    spec = analyses["latency-p95-ratio"]
    answer = await PrometheusQueries(prometheus, Masker()).query(promql(spec, tag, stable_tag))
    assert answer.value == pytest.approx(ratio, rel=1e-9)
    assert measure(spec, answer.value, answer.detail, 0.0).outcome is outcome


@pytest.mark.parametrize(
    ("tag", "stable_tag", "ratio"),
    [
        ("3.0", "0.9", 0.0975 / 0.05),  # the stable is idle: its p95 is NaN
        ("3.0", "0.1", 0.0975 / 0.05),  # no stable task at all: no data
        ("2.0", "0.9", 0.95 / 0.05),
    ],
)
async def test_an_idle_or_missing_stable_compares_the_canary_with_the_50ms_floor(
    prometheus: str, analyses: dict[str, AnalysisSpec], tag: str, stable_tag: str, ratio: float
) -> None:
    spec = analyses["latency-p95-ratio"]
    assert await value_of(prometheus, promql(spec, tag, stable_tag)) == pytest.approx(ratio)


async def test_a_canary_without_traffic_is_inconclusive(
    prometheus: str, analyses: dict[str, AnalysisSpec]
) -> None:
    queries = PrometheusQueries(prometheus, Masker())
    for spec in analyses.values():
        idle = await queries.query(promql(spec, "0.9"))
        assert idle.value is not None
        assert math.isnan(idle.value), (spec.name, idle)
        assert "NaN" in idle.detail
        assert measure(spec, idle.value, idle.detail, 0.0).outcome is Outcome.INCONCLUSIVE
        gone = await queries.query(promql(spec, "9.9"))
        assert (gone.value, gone.detail, gone.bad_query) == (None, "no data", False)
        assert measure(spec, gone.value, gone.detail, 0.0).outcome is Outcome.INCONCLUSIVE


async def test_the_production_queries_parse(
    prometheus: str, analyses: dict[str, AnalysisSpec]
) -> None:
    queries = PrometheusQueries(prometheus, Masker())
    for spec in analyses.values():
        assert await queries.check(promql(spec, "2.0")) is None


# ------------------------------------------------------------------ answers that are not one number


async def test_a_scalar_and_a_single_series(prometheus: str) -> None:
    assert await value_of(prometheus, 'scalar(count(up{job="api"}))') == 4.0
    assert await value_of(prometheus, 'count(up{job="api"})') == 4.0
    assert await value_of(prometheus, "vector(1) / 0") == math.inf


async def test_several_series_are_no_number(prometheus: str) -> None:
    answer = await PrometheusQueries(prometheus, Masker()).query('up{job="api"}')
    assert answer.value is None
    assert not answer.bad_query
    assert answer.detail.startswith("4 series: the query must aggregate to one number")


async def test_a_range_vector_is_no_number(prometheus: str) -> None:
    answer = await PrometheusQueries(prometheus, Masker()).query('up{job="api"}[1m]')
    assert (answer.value, answer.bad_query) == (None, False)
    assert answer.detail == "a matrix result: the query must return one number"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sum(rate(http_requests_total[1m])", "unclosed left parenthesis"),
        ("rate(http_requests_total)", "expected type range vector"),
        ('up{job="api"', "unexpected end of input"),
    ],
)
async def test_a_query_prometheus_refuses_is_a_bad_query_with_its_message(
    prometheus: str, query: str, message: str
) -> None:
    queries = PrometheusQueries(prometheus, Masker())
    answer = await queries.query(query)
    assert (answer.value, answer.bad_query) == (None, True)
    assert "parse error" in answer.detail
    assert message in answer.detail
    assert await queries.check(query) == answer.detail


# ------------------------------------------------------------------ Prometheus not answering


async def test_a_stopped_prometheus_is_inconclusive_and_says_so(tmp_path: Path) -> None:
    server = Prometheus(tmp_path, [])
    queries = PrometheusQueries(server.url, Masker())
    try:
        assert (await queries.query("vector(1)")).value == 1.0
    finally:
        server.stop()
    answer = await queries.query("vector(1)")
    assert (answer.value, answer.bad_query) == (None, False)
    assert answer.detail.startswith(f"Prometheus at {server.url} unreachable: ClientConnectorError")
    assert await queries.check("vector(1") is None  # cannot tell: not refused


async def test_a_silent_prometheus_times_out() -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        start = time.monotonic()
        answer = await PrometheusQueries(url, Masker(), timeout=0.5).query("vector(1)")
    assert time.monotonic() - start < 3
    assert (answer.value, answer.detail) == (None, f"Prometheus at {url}: no answer within 0.5s")


async def test_a_5xx_page_is_no_number(servers: Servers) -> None:
    url = f"http://127.0.0.1:{servers.ports['502']}"
    answer = await PrometheusQueries(url, Masker()).query("vector(1)")
    assert (answer.value, answer.bad_query) == (None, False)
    assert answer.detail == f"Prometheus at {url}: HTTP 502: <html>502 Bad Gateway</html>"


async def test_credentials_are_masked(prometheus: str) -> None:
    masker = Masker(["s3cret-token"])
    port = free_port()
    answer = await PrometheusQueries(f"http://reader:s3cret-token@127.0.0.1:{port}", masker).query(
        'up{job="s3cret-token"}'
    )
    assert answer.value is None
    assert "s3cret-token" not in answer.detail
    assert f"Prometheus at http://***@127.0.0.1:{port} unreachable" in answer.detail
    with_credentials = prometheus.replace("http://", "http://reader:s3cret-token@")
    assert (await PrometheusQueries(with_credentials, masker).query("vector(2)")).value == 2.0


# ------------------------------------------------------------------ through the probe proxy


@pytest.fixture
def probe_proxy() -> Iterator[str]:
    """The probe container's proxy (probe_proxy.py as the probe runs it), on loopback."""
    source = PROBE_PROXY.read_text()
    bind = 'Server(("0.0.0.0", 8080), Handler)'
    assert bind in source
    port = free_port()
    proxy = subprocess.Popen(
        [sys.executable, "-c", source.replace(bind, f'Server(("127.0.0.1", {port}), Handler)')],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until("the probe proxy", lambda: http_get(f"{url}/_probe/ready") == b"", timeout=10)
        yield url
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


async def test_through_the_probe_proxy(
    prometheus: str, analyses: dict[str, AnalysisSpec], probe_proxy: str
) -> None:
    queries = PrometheusQueries(prometheus, Masker())
    spec = analyses["error-rate"]
    answer = await queries.query(promql(spec, "2.0"), proxy=probe_proxy)
    assert answer.value == pytest.approx(0.1, rel=1e-9)
    refused = await queries.query("sum(up", proxy=probe_proxy)
    assert refused.bad_query
    assert "parse error" in refused.detail
    gone = f"http://127.0.0.1:{free_port()}"
    lost = await PrometheusQueries(gone, Masker()).query("vector(1)", proxy=probe_proxy)
    assert lost.value is None
    assert lost.detail.startswith(f"the probe cannot reach Prometheus at {gone}: ")
