"""Canary analysis: success conditions, placeholders in real PromQL, measurements and the verdict
of a run (fail fast, inconclusive never passes, the window's end), and every problem of an
analysis.yaml, including the production one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.analysis import (
    AnalysisFileError,
    AnalysisRun,
    AnalysisSpec,
    Condition,
    Outcome,
    Verdict,
    expand,
    measure,
    parse_analyses,
    parse_condition,
    placeholders,
)

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = ROOT / "desired-state" / "production"

# ------------------------------------------------------------------ conditions


@pytest.mark.parametrize(
    ("text", "canonical", "passes", "fails"),
    [
        ("result < 0.05", "result < 0.05", [0.0, 0.049], [0.05, 1.0]),
        ("result<=3", "result <= 3", [3.0, -1.0], [3.0001]),
        ("  result >   0 ", "result > 0", [1e-9], [0.0, -2.0]),
        ("result >= 1", "result >= 1", [1.0, 7.0], [0.999]),
        ("result == 0", "result == 0", [0.0], [1e-12]),
        ("result < 1e-3", "result < 0.001", [0.0009], [0.001]),
        ("result > -2.5", "result > -2.5", [-2.0], [-2.5]),
        ("result <= 3.0", "result <= 3", [3.0], [3.5]),
    ],
)
def test_conditions(text: str, canonical: str, passes: list[float], fails: list[float]) -> None:
    condition = parse_condition(text)
    assert str(condition) == canonical
    assert parse_condition(str(condition)) == condition
    assert all(condition.holds(v) for v in passes)
    assert not any(condition.holds(v) for v in fails)


def test_nan_never_holds_and_infinity_is_compared() -> None:
    assert not parse_condition("result < 1").holds(math.nan)
    assert not parse_condition("result >= 0").holds(math.nan)
    assert not parse_condition("result < 3").holds(math.inf)
    assert parse_condition("result > 0").holds(math.inf)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "result",
        "result <",
        "value < 0.05",
        "0.05 > result",
        "result =< 1",
        "result != 0",
        "result < 500ms",
        "result < 5%",
        "result < nan",
        "result < inf",
        "result < 1e400",
        "result < 0.05 and result > 0",
        "result < 1 < 2",
    ],
)
def test_bad_conditions_are_refused_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a success condition") as caught:
        parse_condition(text)
    assert repr(text) in str(caught.value)


# ------------------------------------------------------------------ placeholders

CANARY_5XX = (
    '(sum(rate(http_requests_total{job="api", status=~"5.."}[1m])'
    ' * on(instance) group_left() api_build_info{image_tag="{tag}"}) or vector(0))'
    ' / sum(rate(http_requests_total{job="{service}"}[1m])'
    ' * on(instance) group_left() api_build_info{image_tag="{tag}"})'
)


def test_placeholders_in_real_promql_are_told_from_label_matchers() -> None:
    assert placeholders(CANARY_5XX) == {"tag", "service"}
    assert expand(CANARY_5XX, {"tag": "1.4.2", "service": "api", "stack": "driftless"}) == (
        '(sum(rate(http_requests_total{job="api", status=~"5.."}[1m])'
        ' * on(instance) group_left() api_build_info{image_tag="1.4.2"}) or vector(0))'
        ' / sum(rate(http_requests_total{job="api"}[1m])'
        ' * on(instance) group_left() api_build_info{image_tag="1.4.2"})'
    )


@pytest.mark.parametrize(
    "promql",
    [
        'up{job="api"}',
        "sum by (le) (rate(http_request_duration_seconds_bucket{}[5m]))",
        '{__name__=~"http_.*", instance!=""}',
        'up{route=~"/products/[0-9]{2,4}"}',
        'up{route=~"/a{3}"}',
        r'up{route=~"\\p{Greek}+"}',
        r"up{route=~`\p{L}+`}",
        r"up{route=~`\P{Lu}`}",
        '{"http.server.duration", job="api"}',
    ],
)
def test_promql_braces_are_not_placeholders(promql: str) -> None:
    assert placeholders(promql) == set()
    assert expand(promql, {}) == promql


def test_unknown_placeholders_are_found_so_the_renderer_can_refuse_them() -> None:
    assert placeholders('up{image_tag="{tga}", stack="{stack}"}') == {"tga", "stack"}


def test_expand_refuses_a_placeholder_without_value() -> None:
    with pytest.raises(ValueError, match=r"no value for \{stable_tag\}"):
        expand('x{image_tag="{stable_tag}"}', {"tag": "2"})


@pytest.mark.parametrize("value", ['1"} or up{x="', "a\\b", "", "two words", "{tag}"])
def test_expand_refuses_values_that_would_change_the_query(value: str) -> None:
    with pytest.raises(ValueError, match="cannot put tag="):
        expand('x{image_tag="{tag}"}', {"tag": value})


def test_unused_values_are_not_checked() -> None:
    assert expand('x{image_tag="{tag}"}', {"tag": "2", "stable_tag": ""}) == 'x{image_tag="2"}'


# ------------------------------------------------------------------ measurements and verdicts


def spec(**overrides: Any) -> AnalysisSpec:
    values: dict[str, Any] = {
        "name": "error-rate",
        "query": "q",
        "success": parse_condition("result < 0.05"),
    }
    return AnalysisSpec(**{**values, **overrides})


def run_of(spec_: AnalysisSpec, *values: float | None) -> AnalysisRun:
    run = AnalysisRun(spec_)
    for i, value in enumerate(values):
        run = run.add(measure(spec_, value, "no data" if value is None else "", at=float(i)))
    return run


def test_measure_decides_each_outcome() -> None:
    s = spec()
    assert measure(s, 0.01, "", 1.0).outcome is Outcome.SUCCESSFUL
    assert measure(s, 0.2, "", 1.0).outcome is Outcome.FAILED
    assert measure(s, math.inf, "", 1.0).outcome is Outcome.FAILED
    assert measure(s, None, "no data", 1.0).outcome is Outcome.INCONCLUSIVE
    nan = measure(s, math.nan, "NaN", 7.5)
    assert nan.outcome is Outcome.INCONCLUSIVE
    assert (nan.analysis, nan.detail, nan.at) == ("error-rate", "NaN", 7.5)


def test_a_run_fails_at_once_on_the_failure_past_the_limit() -> None:
    s = spec(failure_limit=1)
    assert run_of(s, 0.01, 0.2).verdict(at_window_end=False) is Verdict.RUNNING
    failed = run_of(s, 0.01, 0.2, 0.3)
    assert failed.failed
    assert failed.verdict(at_window_end=False) is Verdict.FAILED
    assert failed.verdict(at_window_end=True) is Verdict.FAILED
    assert run_of(spec(), 0.2).verdict(at_window_end=False) is Verdict.FAILED


def test_a_run_passes_only_at_the_window_end_with_a_successful_measurement() -> None:
    s = spec(failure_limit=1)
    run = run_of(s, 0.01, 0.2, 0.02)
    assert run.verdict(at_window_end=False) is Verdict.RUNNING
    assert run.verdict(at_window_end=True) is Verdict.PASSED


def test_inconclusive_never_passes() -> None:
    s = spec()
    assert run_of(s).verdict(at_window_end=True) is Verdict.INCONCLUSIVE
    assert run_of(s, None, math.nan, None).verdict(at_window_end=True) is Verdict.INCONCLUSIVE
    assert not run_of(s, None, None).failed
    # a pass needs a measurement, however many inconclusive ones there were
    assert run_of(s, None, None, 0.0).verdict(at_window_end=True) is Verdict.PASSED


def test_past_the_inconclusive_limit_the_run_is_inconclusive_at_once() -> None:
    s = spec(inconclusive_limit=2)
    assert run_of(s, None, 0.01, None).verdict(at_window_end=False) is Verdict.RUNNING
    gave_up = run_of(s, None, 0.01, None, None)
    assert gave_up.inconclusive
    assert not gave_up.failed
    assert gave_up.verdict(at_window_end=False) is Verdict.INCONCLUSIVE
    # a failure past its limit is a failure, whatever else happened
    both = run_of(spec(inconclusive_limit=0), None, 0.5)
    assert both.verdict(at_window_end=False) is Verdict.FAILED


def test_summaries_for_people() -> None:
    s = spec(failure_limit=1)
    assert run_of(s).summary() == "error-rate: not measured yet (result < 0.05)"
    assert (
        run_of(s, 0.02, 0.01, 0.04, 0.031).summary()
        == "error-rate: 0.031 (result < 0.05) 4/4 successful"
    )
    assert (
        run_of(s, 0.02, 0.2, 0.3).summary()
        == "error-rate: 0.3 (result < 0.05) 1/3 successful, 2 failed (limit 1)"
    )
    assert (
        run_of(spec(inconclusive_limit=3), 0.02, None).summary()
        == "error-rate: no data (result < 0.05) 1/2 successful, 1 inconclusive (limit 3)"
    )


# ------------------------------------------------------------------ analysis.yaml


def good_entry(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "error-rate",
        "query": 'sum(rate(x{image_tag="{tag}"}[1m]))',
        "success": "result < 0.05",
        **overrides,
    }


def test_analysis_file() -> None:
    data = {
        "api": [
            good_entry(interval="30s", failure_limit=2, inconclusive_limit=5),
            good_entry(name="p95", query="y", success="result <= 3", interval=1.5),
        ],
        "web": [],
    }
    parsed = parse_analyses(data, {"api", "web", "db"})
    assert parsed == {
        "api": (
            AnalysisSpec(
                "error-rate",
                'sum(rate(x{image_tag="{tag}"}[1m]))',
                Condition("<", 0.05),
                interval=30.0,
                failure_limit=2,
                inconclusive_limit=5,
            ),
            AnalysisSpec("p95", "y", Condition("<=", 3.0), interval=1.5),
        )
    }
    assert parse_analyses(None, {"api"}) == {}


def test_every_problem_of_an_analysis_file_is_listed() -> None:
    data = {
        "nope": [good_entry()],
        "api": [
            good_entry(),
            good_entry(interval="soon"),
            {"query": "up", "success": "result > 0"},
            good_entry(name="cond", success="value < 1"),
            good_entry(name="dur", interval="ten seconds"),
            good_entry(name="zero", interval="0s"),
            good_entry(name="neg", failure_limit=-1, inconclusive_limit=-2),
            good_entry(name="frac", failure_limit=1.5, inconclusive_limit="3"),
            good_entry(name="keys", timeout="5s", count=3),
            good_entry(name="ph", query='x{image_tag="{tga}", env="{environment}"}'),
            good_entry(name="noq", query=None, success=None),
            "error-rate",
        ],
        "web": {"name": "x"},
    }
    with pytest.raises(AnalysisFileError) as caught:
        parse_analyses(data, {"api", "web"})
    problems = caught.value.problems
    assert isinstance(caught.value, ValueError)
    expected = [
        "analysis.yaml: nope: not a service of the stack",
        "analysis.yaml: api: analysis 2 (error-rate): interval: not a duration: 'soon'",
        "analysis.yaml: api: analysis 3: missing name",
        "analysis.yaml: api: analysis 4 (cond): success: not a success condition: 'value < 1'",
        "analysis.yaml: api: analysis 5 (dur): interval: not a duration: 'ten seconds'",
        "analysis.yaml: api: analysis 6 (zero): interval: '0s' must be positive",
        "analysis.yaml: api: analysis 7 (neg): failure_limit: -1 must not be negative",
        "analysis.yaml: api: analysis 7 (neg): inconclusive_limit: -2 must not be negative",
        "analysis.yaml: api: analysis 8 (frac): failure_limit: 1.5 is not a whole number",
        "analysis.yaml: api: analysis 8 (frac): inconclusive_limit: '3' is not a whole number",
        "analysis.yaml: api: analysis 9 (keys): unknown key 'count'",
        "analysis.yaml: api: analysis 9 (keys): unknown key 'timeout'",
        "analysis.yaml: api: analysis 10 (ph): query: unknown placeholder {environment}, {tga}",
        "analysis.yaml: api: analysis 11 (noq): missing query",
        "analysis.yaml: api: analysis 11 (noq): missing success",
        "analysis.yaml: api: analysis 12: expected a mapping, not str",
        "analysis.yaml: api: the name 'error-rate' is used by 2 analyses",
        "analysis.yaml: web: expected a list of analyses, not dict",
    ]
    for line in expected:
        assert any(p.startswith(line) for p in problems), (line, problems)
    assert len(problems) == len(expected), problems
    assert str(caught.value).count("analysis.yaml:") == len(expected)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (["api"], "expected a mapping of service → analyses, not list"),
        ({"api": [good_entry(name="")]}, "name '': use letters"),
        ({"api": [good_entry(name="two words")]}, "name 'two words': use letters"),
        ({"api": [good_entry(success=0.05)]}, "success: not a success condition: '0.05'"),
        ({"api": [good_entry(failure_limit=None)]}, "failure_limit: None is not a whole number"),
        ({"api": [good_entry(failure_limit=True)]}, "failure_limit: True is not a whole number"),
        ({"api": [good_entry(interval=[1])]}, "interval: not a duration: [1]"),
        ({"api": [good_entry(query="  ")]}, "query: not a PromQL text"),
    ],
)
def test_more_analysis_file_problems(data: object, problem: str) -> None:
    with pytest.raises(AnalysisFileError, match=problem.replace("[1]", r"\[1\]")):
        parse_analyses(data, {"api"})


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_the_environments_analyses_are_valid(environment: str) -> None:
    base = ROOT / "desired-state" / "base" / "stack.yml"  # every environment's services
    services = set(yaml.safe_load(base.read_text())["services"])
    data = yaml.safe_load((PRODUCTION.parent / environment / "analysis.yaml").read_text())
    analyses = parse_analyses(data, services)
    assert [a.name for a in analyses["api"]] == ["error-rate", "latency-p95-ratio"]
    assert {p for a in analyses["api"] for p in placeholders(a.query)} == {"tag", "stable_tag"}
