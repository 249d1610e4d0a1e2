"""The soak of issue 12, bounded for CI: the real agent (``reconciler run``, a pass every 5 s)
for under two minutes while good and bad releases alternate every 20 s, driven by the same code
as the 2-hour benchmark (bench/reconciler/soak.py). Timings and memory are the benchmark's to
judge; here: what a user would notice."""

from __future__ import annotations

import pytest
from reconciler_support.e2e import Env, revert_commits

from bench.reconciler.soak import Options, soak

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: descriptors a quiet agent may hold at the end beyond the start (a pooled connection, a pipe)
FD_MARGIN = 3


def test_good_and_bad_releases_alternating_under_a_running_agent(env: Env) -> None:
    options = Options(minutes=0.75, interval=5, change_every=20, window=10, settle_timeout=150)
    report, _ = soak(env, options)
    print(report.text())
    good = [r for r in report.releases if r.kind == "good"]
    bad = [r for r in report.releases if r.kind == "bad"]
    assert len(good) >= 2
    assert len(bad) >= 2

    # every bad release rolled back and reverted exactly once, no good release reverted
    assert {r.number: report.reverts[r.sha] for r in bad} == {r.number: 1 for r in bad}
    assert {r.number: r.outcome for r in good} == {r.number: "applied" for r in good}
    assert not any(report.reverts[r.sha] for r in good)
    assert len(revert_commits(env.remote)) == len(bad)

    # the live stack runs the last good release
    assert env.running_tags("web") == [good[-1].tag]
    assert env.running_tags("api") == [good[-1].tag] * 2

    # the agent kept going: alive and serving /metrics at the end, stopped cleanly
    assert report.alive
    assert report.serving_metrics
    assert report.exit_code == 0

    # one deploy per good release (and the first one), one rollback per bad release, quiet
    # passes in between, and none that failed
    assert report.passes["failed"] == 0
    assert report.passes["success"] == len(good) + 1
    assert report.passes["rolled_back"] == len(bad)
    assert report.reverts_metric == len(bad)
    assert report.passes["noop"] > 0
    assert report.end.results["noop"] > 0

    # no descriptor leak visible even in two minutes
    assert report.end.median("fds") <= report.start.median("fds") + FD_MARGIN
