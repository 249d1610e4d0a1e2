"""PromQL instant queries for canary analysis (aiohttp): ``GET /api/v1/query``, its answer read
as one number or as the reason there is none.

* a scalar, or a vector of one series → its value (``NaN`` included: the analysis counts it as
  inconclusive);
* an empty vector → no value, ``no data``; several series → no value, naming how many (the
  query must aggregate to one number); a range vector or a string → no value;
* ``errorType: bad_data`` → ``bad_query`` with Prometheus's message: the query does not parse
  (or uses a function wrongly), which no retry will change;
* Prometheus unreachable, slow or answering 5xx (itself, or the probe proxy in front of it) → no
  value, with a detail that names Prometheus and the error, masked.

Nothing here raises for Prometheus's sake: an analysis that cannot measure is inconclusive, and
the caller decides what that means. ``proxy`` is the URL of an HTTP proxy, the probe container
attached to the stack network (:mod:`reconciler.adapters.probes`) when Prometheus is only
reachable there.
"""

from __future__ import annotations

import json
import math
from typing import Any

import aiohttp

from reconciler.analysis import Answer
from reconciler.checks import excerpt
from reconciler.masking import Masker

_PROBE_ERROR = "X-Driftless-Probe-Error"


class PrometheusQueries:
    def __init__(self, url: str, masker: Masker, *, timeout: float = 5.0) -> None:
        self._url = url.rstrip("/")
        self._masker = masker
        self._timeout = timeout

    @property
    def _where(self) -> str:
        return f"Prometheus at {self._masker.mask(self._url)}"

    async def query(self, promql: str, proxy: str | None = None) -> Answer:
        """The instant query's one number, or ``None`` and why (never raises for Prometheus)."""
        try:
            status, body, probe_failed = await self._get(promql, proxy)
        except TimeoutError:
            return self._none(f"{self._where}: no answer within {self._timeout:g}s")
        except aiohttp.ClientError as exc:
            return self._none(f"{self._where} unreachable: {type(exc).__name__}: {exc}")
        if probe_failed:
            return self._none(f"the probe cannot reach {self._where}: {excerpt(body, 200)}")
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            return self._none(f"{self._where}: HTTP {status}: {excerpt(body, 200)}")
        if document.get("status") != "success":
            return self._error(document, status)
        return self._masked(_one_number(document.get("data")))

    async def check(self, promql: str, proxy: str | None = None) -> str | None:
        """Prometheus's parse error for a query it refuses, else ``None`` (also when it cannot be
        asked: the analysis will then be inconclusive, never passed)."""
        answer = await self.query(promql, proxy)
        return answer.detail if answer.bad_query else None

    async def _get(self, promql: str, proxy: str | None) -> tuple[int, str, bool]:
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(
                f"{self._url}/api/v1/query",
                params={"query": promql},
                proxy=proxy,
                headers={"User-Agent": "driftless-reconciler", "Accept": "application/json"},
            ) as response,
        ):
            body = await response.text(errors="replace")
            return response.status, body, bool(response.headers.get(_PROBE_ERROR))

    def _error(self, document: dict[str, Any], status: int) -> Answer:
        kind, message = document.get("errorType"), str(document.get("error", ""))
        if kind == "bad_data":
            return Answer(None, self._masker.mask(message), bad_query=True)
        return self._none(f"{self._where}: HTTP {status}: {kind}: {excerpt(message, 300)}")

    def _none(self, detail: str) -> Answer:
        return Answer(None, self._masker.mask(detail))

    def _masked(self, answer: Answer) -> Answer:
        return Answer(answer.value, self._masker.mask(answer.detail), answer.bad_query)


def _one_number(data: Any) -> Answer:
    """The ``data`` of a successful query → its one number, or none and why."""
    if not isinstance(data, dict):
        return Answer(None, "Prometheus answered without data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _sample(result)
    if kind != "vector" or not isinstance(result, list):
        return Answer(None, f"a {kind} result: the query must return one number")
    if not result:
        return Answer(None, "no data")
    if len(result) > 1:
        return Answer(
            None, f"{len(result)} series: the query must aggregate to one number (sum, max, ...)"
        )
    series = result[0]
    return _sample(series.get("value") if isinstance(series, dict) else None)


def _sample(sample: Any) -> Answer:
    """``[timestamp, "0.031"]`` → 0.031 (Prometheus writes ``NaN``, ``+Inf``, ``-Inf`` as such)."""
    try:
        value = float(sample[1])
    except (TypeError, ValueError, IndexError, KeyError):
        return Answer(None, f"not a sample: {excerpt(str(sample), 100)}")
    if math.isnan(value):
        return Answer(value, "NaN (zero divided by zero, or no observations)")
    return Answer(value, str(sample[1]))
