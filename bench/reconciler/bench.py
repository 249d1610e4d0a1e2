"""Reconciler benchmark on the real Swarm (prints figures; not part of the test suite).

1. No-op pass over a 100-service stack (replicas 0): wall time of `reconciler sync` (process
   start included) and of the pass itself, and the agent's peak memory (max RSS).
2. One tag bump end to end (fetch → render → plan → pre-flight → apply → verify incl. HTTP
   checks) versus plain `docker stack deploy --detach=false` (which waits for convergence),
   measured alternately in the same run. Target: ratio <= 1.10.
3. A failed deploy until every service is back and the revert is pushed, minus the health
   check timeout. Target: <= 60 s.

Run it after `scripts/testenv.sh up`:  .venv/bin/python bench/reconciler/bench.py [--rounds N]
Everything it creates is named with TEST_STACK_PREFIX and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "tests" / "e2e" / "reconciler_e2e" / "app"
sys.path.insert(0, str(ROOT / "tests"))

from reconciler_support.testenv import load_testenv  # noqa: E402


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def git(cwd: Path, *args: str) -> str:
    return sh("git", "-C", str(cwd), *args).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class World:
    def __init__(self, root: Path, stack: str, *, health_timeout: str = "10s") -> None:
        self.root = root
        self.stack = stack
        root.mkdir(parents=True, exist_ok=True)
        self.bare = root / "remote.git"
        self.work = root / "work"
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(root, "clone", "-q", str(self.bare), str(self.work))
        git(self.work, "config", "user.email", "bench@example.org")
        git(self.work, "config", "user.name", "Bench")
        git(self.work, "checkout", "-q", "-b", "main")
        self.config = root / "config.json"
        self.config.write_text(json.dumps({
            "stack": stack, "environment": "bench", "state_dir": str(root / "state"),
            "git": {"url": self.bare.as_uri(), "path": "desired-state/bench"},
            "timeouts": {"verify": "300s", "rollback": "300s"},
            "health": {"probe_image": os.environ["TEST_BASE_IMAGE"], "timeout": health_timeout,
                       "interval": "1s"},
            "docker": {"probe_labels": {"driftless.test": os.environ["TEST_STACK_PREFIX"]}},
            "log": {"format": "json"},
        }))  # fmt: skip

    def commit(self, stack: str, images: str, message: str) -> None:
        folder = self.work / "desired-state" / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "stack.yml").write_text(stack)
        (folder / "images.yaml").write_text(images)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:main")

    def sync(self) -> tuple[float, float | None, int, str]:
        """Run `reconciler sync` in a child; wall seconds, pass seconds, max RSS (KiB), result."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "reconciler.cli", "--config", str(self.config), "sync"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        pass_s = None
        for line in proc.stderr.splitlines():
            match = re.search(r'"message": "pass \w+: .* in ([0-9.]+)s"', line)
            if match:
                pass_s = float(match.group(1))
        return wall, pass_s, max(rss, before), proc.stdout.strip()

    def remove(self) -> None:
        sh("docker", "stack", "rm", self.stack, check=False)
        ids = sh("docker", "ps", "-aq", "--filter", f"label=driftless.probe={self.stack}",
                 check=False).stdout.split()  # fmt: skip
        if ids:
            sh("docker", "rm", "-f", *ids, check=False)
        deadline = time.time() + 60
        while (
            time.time() < deadline
            and sh(
                "docker", "network", "ls", "-q", "--filter", f"name={self.stack}_", check=False
            ).stdout.strip()
        ):
            time.sleep(0.5)


def build_images() -> dict[str, str]:
    repo = f"{os.environ['TEST_REGISTRY']}/{os.environ['TEST_STACK_PREFIX']}/reconciler-bench"
    out = {}
    for tag, mode in (("1", "good"), ("2", "good"), ("3", "bad")):
        ref = f"{repo}:{tag}"
        sh("docker", "build", "-q", "-t", ref, "--build-arg",
           f"PYTHON_IMAGE={os.environ['TEST_BASE_IMAGE']}", "--build-arg", f"APP_VERSION={tag}",
           "--build-arg", f"APP_MODE={mode}", str(APP))  # fmt: skip
        sh("docker", "push", "-q", ref)
        out[tag] = ref
    return out


def two_services(port: int, prefix: str) -> str:
    return f"""version: "3.8"
services:
  web:
    labels: {{driftless.test: {prefix}}}
    ports: [{{target: 8080, published: {port}, mode: host}}]
    networks: [back]
    deploy:
      endpoint_mode: dnsrr
      labels:
        driftless.health.url: "http://127.0.0.1:{port}/health"
        driftless.health.interval: "1s"
      update_config: {{order: stop-first}}
      rollback_config: {{order: stop-first}}
  api:
    labels: {{driftless.test: {prefix}}}
    networks: [back]
    deploy:
      endpoint_mode: dnsrr
      replicas: 2
      labels:
        driftless.health.url: "http://api:8080/version"
        driftless.health.network: back
        driftless.health.expect-version: "{{tag}}"
        driftless.health.interval: "1s"
      update_config: {{order: start-first, parallelism: 1}}
      rollback_config: {{order: start-first, parallelism: 2}}
networks:
  back: {{driver: overlay, attachable: true}}
"""


def bench_noop(tmp: Path, prefix: str, image: str, n: int, rounds: int) -> None:
    world = World(tmp / "noop", f"{prefix}bench100")
    services = "".join(
        f"  s{i:03d}:\n    labels: {{driftless.test: {prefix}}}\n"
        f"    deploy: {{replicas: 0, endpoint_mode: dnsrr}}\n"
        for i in range(n)
    )
    images = "".join(f"s{i:03d}: {image}\n" for i in range(n))
    world.commit(f'version: "3.8"\nservices:\n{services}', images, f"{n} services")
    try:
        wall, pass_s, _, result = world.sync()
        print(f"first deploy of {n} services (replicas 0): {wall:.1f} s ({result})")
        walls, passes, rss = [], [], 0
        for _ in range(rounds):
            wall, pass_s, peak, result = world.sync()
            assert result.startswith("noop"), result
            walls.append(wall)
            passes.append(pass_s or 0.0)
            rss = max(rss, peak)
        print(f"no-op pass over {n} services, {rounds} runs: `reconciler sync` wall "
              f"median {statistics.median(walls):.2f} s (min {min(walls):.2f}, "
              f"max {max(walls):.2f}); the pass itself median {statistics.median(passes):.2f} s; "
              f"peak RSS {rss / 1024:.0f} MiB")  # fmt: skip
    finally:
        world.remove()


def bench_bump(tmp: Path, prefix: str, images: dict[str, str], rounds: int) -> None:
    port = free_port()
    world = World(tmp / "bump", f"{prefix}benchbump")
    stack = two_services(port, prefix)
    world.commit(stack, f"web: {images['1']}\napi: {images['1']}\n", "start at 1")
    try:
        world.sync()
        rec, plain = [], []
        tag = "1"
        rendered = tmp / "plain.yml"
        for _ in range(rounds):
            tag = "2" if tag == "1" else "1"
            world.commit(stack, f"web: {images[tag]}\napi: {images[tag]}\n", f"bump to {tag}")
            wall, _, _, result = world.sync()
            assert result.startswith("success"), result
            rec.append(wall)
            # the same change with plain docker: render as the agent does, deploy, wait
            tag = "2" if tag == "1" else "1"
            state = Path(json.loads(world.config.read_text())["state_dir"])
            text = (state / "rendered" / f"{world.stack}.yml").read_text()
            other = images["1"] if tag == "1" else images["2"]
            now = images["2"] if tag == "1" else images["1"]
            rendered.write_text(text.replace(now, other))
            start = time.perf_counter()
            sh("docker", "stack", "deploy", "--with-registry-auth", "--detach=false", "-c",
               str(rendered), world.stack)  # fmt: skip
            plain.append(time.perf_counter() - start)
            # put git back in line with what plain docker deployed, so the next bump is one change
            world.commit(stack, f"web: {images[tag]}\napi: {images[tag]}\n", f"plain {tag}")
            world.sync()
        r, p = statistics.median(rec), statistics.median(plain)
        rec_s = sorted(round(x, 1) for x in rec)
        plain_s = sorted(round(x, 1) for x in plain)
        print(f"tag bump, 2 services (web stop-first, api 2 replicas start-first), {rounds} "
              f"rounds: reconciler end to end median {r:.1f} s {rec_s}, plain docker stack "
              f"deploy --detach=false median {p:.1f} s {plain_s}; ratio {r / p:.2f} "
              "(target <= 1.10)")  # fmt: skip
    finally:
        world.remove()


def bench_failure(tmp: Path, prefix: str, images: dict[str, str], timeout: float) -> None:
    port = free_port()
    world = World(tmp / "fail", f"{prefix}benchfail", health_timeout=f"{timeout:.0f}s")
    stack = two_services(port, prefix)
    world.commit(stack, f"web: {images['1']}\napi: {images['1']}\n", "start at 1")
    try:
        world.sync()
        world.commit(stack, f"web: {images['3']}\napi: {images['3']}\n", "bump to the bad 3")
        wall, _, _, result = world.sync()
        assert result.startswith("rolled_back"), result
        reverted = "Revert" in git(world.bare, "log", "-1", "--format=%s", "main")
        print(f"failed deploy (health-check timeout {timeout:.0f} s) until both services are back "
              f"and the revert is pushed{'' if reverted else ' (NO REVERT FOUND)'}: {wall:.1f} s, "
              f"{wall - timeout:.1f} s beyond the timeout (target <= 60 s)")  # fmt: skip
    finally:
        world.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--health-timeout", type=float, default=10.0)
    parser.add_argument("--only", choices=("noop", "bump", "failure"), help="run one part")
    args = parser.parse_args()
    load_testenv()
    prefix = os.environ["TEST_STACK_PREFIX"]
    images = build_images()
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        if args.only in (None, "noop"):
            bench_noop(Path(tmp), prefix, images["1"], args.services, max(args.rounds, 5))
        if args.only in (None, "bump"):
            bench_bump(Path(tmp), prefix, images, args.rounds)
        if args.only in (None, "failure"):
            bench_failure(Path(tmp), prefix, images, args.health_timeout)


if __name__ == "__main__":
    main()
