"""Progressive delivery on the real Swarm: a release's first new task is the canary, checked at
its own address and analysed against a real Prometheus that scrapes every task while a load
generator sends real requests; the rest of the service is updated only once the canary passed.

One stack for the module, deployed once; each test releases one build onto it (the good one, then
each bad one: the wrong version, HTTP 500s, ten times slower, a crash after 20 s) and checks what
a user would notice: at most one of the three tasks ever ran a bad build, every task is back on
the good one, the commit is reverted once with the reason, and the failure was found at the
canary, not at a timeout."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from reconciler_support.e2e import STACK_DIR, Env, free_port, revert_commits, sh, wait_for
from reconciler_support.gitrepo import Remote
from reconciler_support.progressive import (
    ANALYSIS_YML,
    BUILDS,
    PROMETHEUS_YML,
    build,
    images_yml,
    stack_yml,
)

from reconciler.cli import EXIT_OK, EXIT_ROLLED_BACK

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def images(registry: str, base_image: str) -> dict[str, str]:
    return build(registry, base_image, os.environ.get("TEST_STACK_PREFIX", "dlt"))


class Canaried(Env):
    prometheus_port: int = 0

    def release(self, tag: str, message: str) -> str:
        return self.commit(message, images=images_yml(self.images, tag))

    def query(self, promql: str) -> list[object]:
        url = f"http://127.0.0.1:{self.prometheus_port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": promql}
        )
        with urllib.request.urlopen(url, timeout=5) as response:
            return list(json.loads(response.read())["data"]["result"])


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, images: dict[str, str], base_image: str
) -> Iterator[Canaried]:
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    root = tmp_path_factory.mktemp("progressive")
    remote = Remote(root)
    stack = f"{prefix}c{os.getpid() % 100000}"
    env = Canaried(stack, prefix, root, remote, images, free_port(), base_image)
    env.prometheus_port = free_port()
    remote.write(
        {
            f"{STACK_DIR}/stack.yml": stack_yml(prefix, env.prometheus_port),
            f"{STACK_DIR}/images.yaml": images_yml(images, "c1"),
            f"{STACK_DIR}/analysis.yaml": ANALYSIS_YML,
            f"{STACK_DIR}/prometheus.yml": PROMETHEUS_YML,
        },
        "Deploy the api at c1 with its Prometheus and a load",
    )
    env.write_config(
        timeouts={"apply": "120s", "verify": "120s", "rollback": "120s"},
        analysis={"prometheus_url": "http://prometheus:9090", "network": "back"},
    )
    try:
        first = env.cli("sync")
        assert first.returncode == EXIT_OK, first.stderr[-3000:]
        # Prometheus sees the load on every task before anything is released
        wait_for(
            "Prometheus to measure requests on three tasks",
            lambda: len(env.query('rate(http_requests_total{route="/items"}[20s]) > 0')) >= 3,
            timeout=90,
        )
        yield env
    finally:
        env.cleanup()


def _running(env: Env, tag: str) -> int:
    return env.running_tags("api").count(tag)


def _release_watched(env: Canaried, tag: str) -> tuple[int, int, float, str]:
    """Release ``tag`` and run one pass while watching the api's tasks: the exit code, the most
    tasks ever seen running the release, the pass's seconds and its log."""
    env.release(tag, f"Bump api to {tag} ({BUILDS[tag][1]})")
    started = time.monotonic()
    proc = env.start("sync")
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _running(env, tag))
        time.sleep(0.5)
    took = time.monotonic() - started
    log = (env.root / "agent.log").read_text()
    return proc.returncode, peak, took, log


def test_a_good_release_is_promoted_after_its_canary(world: Canaried) -> None:
    code, peak, took, log = _release_watched(world, "c2")
    assert code == EXIT_OK, log[-3000:]
    assert peak == 3
    assert "analysing the canary of api" in log
    assert "canary of api passed" in log
    assert world.running_tags("api") == ["c2", "c2", "c2"]
    status = world.status()
    assert status["last_result"] == "success"
    print(f"\ngood release: {took:.1f}s from the pass's start to every task on c2")


@pytest.mark.parametrize(
    ("tag", "reason", "says"),
    [
        ("c3", "HealthCheckFailed", "version c3 is not served"),
        ("c4", "AnalysisFailed", "error-rate"),
        ("c5", "AnalysisFailed", "latency-p95-ratio"),
        ("c6", "HealthCheckFailed", "a new task exited"),
    ],
    ids=["wrong-version", "http-500", "ten-times-slower", "crash-after-20s"],
)
def test_a_bad_release_is_stopped_at_its_canary(
    world: Canaried, tag: str, reason: str, says: str
) -> None:
    reverts = len(revert_commits(world.remote))
    bad = world.remote.head()
    code, peak, took, log = _release_watched(world, tag)
    assert code == EXIT_ROLLED_BACK, log[-3000:]
    assert peak <= 1, f"{peak} tasks ran {tag}"
    assert world.running_tags("api") == ["c2", "c2", "c2"]
    status = world.status()
    assert status["last_reason"] == reason
    assert says in status["last_message"]
    assert "api canary" in status["last_message"]
    assert len(revert_commits(world.remote)) == reverts + 1
    assert world.remote.head() != bad
    assert says in world.remote.message()
    print(f"\n{tag} ({BUILDS[tag][1]}): stopped and rolled back in {took:.1f}s, "
          f"at most {peak} of 3 tasks ran it")  # fmt: skip
    # the revert is the next revision: a quiet pass, every task on c2
    assert world.cli("sync").returncode == EXIT_OK


def test_the_stack_is_where_it_started(world: Canaried) -> None:
    """Nothing of the bad builds is left: no task, and the images file names c2."""
    out = sh("docker", "service", "ps", f"{world.stack}_api", "--filter",
             "desired-state=running", "--format", "{{.Image}}").stdout  # fmt: skip
    assert all(":c2" in line for line in out.split())
    text = world.remote.show(f"{STACK_DIR}/images.yaml")
    assert "reconciler-e2e-app:c2" in text.splitlines()[0]
    assert Path(world.config_path).exists()
