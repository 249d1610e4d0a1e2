"""The metrics port (Prometheus): the fake answers in the shapes the real adapter gives a real
Prometheus: one number, no data, or Prometheus unreachable — never a pass by default."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from reconciler_support.fakes import FakeMetrics
from reconciler_support.prometheus import Prometheus

from reconciler.adapters.prometheus import PrometheusQueries
from reconciler.masking import Masker
from reconciler.ports import MetricsSource

BAD = "sum(rate("  # a query that does not parse


@dataclass
class Side:
    source: MetricsSource
    serve: Callable[[float], str]  # a query whose answer is this number
    silence: Callable[[], None]  # Prometheus stops answering


@pytest.fixture(params=["fake", "real"])
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    if request.param == "fake":
        fake = FakeMetrics()
        fake.refused[BAD] = "1:10: parse error: unclosed left parenthesis"

        def serve(value: float) -> str:
            fake.values[f"vector({value})"] = value
            return f"vector({value})"

        yield Side(fake, serve, lambda: setattr(fake, "down", True))
        return
    server = Prometheus(tmp_path, [])
    try:
        yield Side(PrometheusQueries(server.url, Masker()), lambda v: f"vector({v})", server.stop)
    finally:
        server.stop()


async def test_a_query_with_one_number_answers_it(side: Side) -> None:
    answer = await side.source.query(side.serve(0.25))
    assert answer.value == 0.25
    assert not answer.bad_query


async def test_a_query_without_data_has_no_value(side: Side) -> None:
    answer = await side.source.query('http_requests_total{job="nothing-here"}')
    assert answer.value is None
    assert answer.detail == "no data"


async def test_a_query_that_does_not_parse_is_refused_with_prometheus_words(side: Side) -> None:
    refused = await side.source.check(BAD)
    assert refused is not None
    assert "parse error" in refused
    assert await side.source.check(side.serve(2.0)) is None


async def test_prometheus_unreachable_has_no_value_and_says_so(side: Side) -> None:
    side.silence()
    answer = await side.source.query(side.serve(1.0))
    assert answer.value is None
    assert "Prometheus at http" in answer.detail
    assert "unreachable" in answer.detail
