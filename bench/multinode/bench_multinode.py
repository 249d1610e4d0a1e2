"""The agent on a five-node Swarm (``scripts/swarm-nodes.sh``): failover and the no-op pass.

1. ``failover``: the agent as the production stack runs it on several managers (a Swarm service,
   two tasks: one acts, one stands by; ``--replicas 1``: one task that Swarm moves), deploying a
   small stack from a git remote. ``--kills`` times (10): a release is pushed (every other one
   bad), and after a random delay (0 to ``--window`` seconds: any point of the pass, from fetch
   to the rollback) the node of the agent that holds the lease is killed hard. Printed per kill
   and in sum: the time from the kill to the revert pushed and every changed service back
   (target <= 90 s), reverts per bad release (target: exactly 1, never 2) and reverts of good
   releases (target 0). Each release is a desired state of its own (a release number in the
   service's environment): the same bad state pushed again would be refused as quarantined.
2. ``noop``: a no-op ``reconciler sync`` over ``--services`` (200) services of one task each,
   spread over the five nodes (target <= 1 s), next to the same services scaled to 0 (the
   single-node benchmark's shape: ``bench/reconciler/bench.py``) in the same run.

Run as root after ``scripts/testenv.sh up`` (it brings the five-node Swarm up if it is not, and
down again after):

    .venv/bin/python bench/multinode/bench_multinode.py [--only failover|noop] [--kills 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from multinode_support.agent import (  # noqa: E402
    AgentService,
    app_stack,
    build_agent_images,
    since,
)
from multinode_support.cluster import ENV_FILE, Cluster, run_script, wait_until  # noqa: E402
from multinode_support.fixtures import build_context  # noqa: E402
from reconciler_support.testenv import load_testenv  # noqa: E402


def bench_failover(
    cluster: Cluster, images: dict[str, str], prefix: str, args: argparse.Namespace
) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-failover-"))
    agent = AgentService(cluster, work, images, prefix)
    agent.remove()
    rng = random.Random(args.seed)
    rows: list[dict[str, object]] = []
    try:
        first = agent.commit("Web 1", "1")
        agent.deploy(replicas=args.replicas)
        wait_until("web 1 deployed", lambda: agent.applied(first), 300, 2)
        good = "1"
        for n in range(1, args.kills + 1):
            cluster.restore()
            wait_until(
                "the agent tasks running",
                lambda: len(set(agent.running_on())) == args.replicas,
                180,
            )
            wait_until("an agent holding the lease", lambda: agent.leaseholder(), 120)
            bad = n % 2 == 1
            tag = "3" if bad else ("2" if good == "1" else "1")
            sha = agent.commit(f"Kill {n}: web {tag}", tag, stack=app_stack(release=str(n)))
            delay = rng.uniform(0, args.window)
            time.sleep(delay)
            phase = agent.journal_phase() or "idle"
            lease = agent.leaseholder()
            node = lease["node"] if lease else agent.running_on()[0]
            cluster.kill(node)
            killed = time.monotonic()
            want = good if bad else tag
            if bad:
                wait_until("the revert", lambda s=sha: agent.reverts_of(s) >= 1, 300, 1)
                reverted = since(killed)
            else:
                wait_until("applied", lambda s=sha: agent.applied(s), 300, 1)
                reverted = None
                good = tag
            every = [want] * agent.web_replicas()
            wait_until("web back", lambda e=every: agent.web_running_tags() == e, 180, 1)
            back = since(killed)
            time.sleep(5)  # a second revert would come now, from a second agent
            row = {
                "kill": n, "release": "bad" if bad else "good", "after": round(delay, 1),
                "phase": phase, "node": node, "revert_s": reverted and round(reverted, 1),
                "back_s": round(back, 1), "reverts": agent.reverts_of(sha),
            }  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        cluster.restore()
        agent.remove()
        shutil.rmtree(work, ignore_errors=True)
    bads = [r for r in rows if r["release"] == "bad"]
    goods = [r for r in rows if r["release"] == "good"]
    backs = [float(r["back_s"]) for r in bads]  # type: ignore[arg-type]
    print(
        f"\nfailover, {len(rows)} kills of the acting agent's node ({args.replicas} agent "
        f"task(s)): bad release -> revert pushed and every service back: median "
        f"{statistics.median(backs):.1f} s, max {max(backs):.1f} s (target <= 90 s); "
        f"double reverts {sum(int(r['reverts']) > 1 for r in bads)} (target 0), bad releases "
        f"not reverted {sum(int(r['reverts']) == 0 for r in bads)}, good releases reverted "
        f"{sum(int(r['reverts']) > 0 for r in goods)} (target 0); phases hit: "
        f"{sorted({str(r['phase']) for r in rows})}"
    )


def _sync(config: Path) -> tuple[float, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "--config", str(config), "sync"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    for line in proc.stderr.splitlines():
        match = re.search(r'"message": "pass (\w+): .* in ([0-9.]+)s"', line)
        if match:
            return float(match.group(2)), match.group(1)
    raise SystemExit(f"reconciler sync said nothing of its pass:\n{proc.stderr[-3000:]}")


def _tasks_on(cluster: Cluster, stack: str) -> dict[str, int]:
    """The stack's running containers on each node."""
    label = {"label": f"com.docker.stack.namespace={stack}"}
    return {n.name: len(n.client.containers.list(filters=label)) for n in cluster.nodes.values()}


def bench_noop(cluster: Cluster, web: str, prefix: str, args: argparse.Namespace) -> None:
    manager = cluster.manager()
    root = Path(tempfile.mkdtemp(prefix=f"{prefix}-noop-"))
    stack, n = f"{prefix}many", args.services
    bare, work = root / "remote.git", root / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    config = root / "config.json"
    config.write_text(json.dumps({
        "stack": stack, "environment": "bench", "state_dir": str(root / "state"),
        "git": {"url": bare.as_uri(), "path": "desired-state/bench"},
        "timeouts": {"apply": "900s", "verify": "900s"},
        "docker": {"host": manager.url}, "log": {"format": "json"},
    }))  # fmt: skip

    def commit(replicas: int) -> None:
        folder = work / "desired-state" / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        services = "".join(
            f"  s{i:03d}:\n    networks: [net]\n"
            f"    deploy: {{replicas: {replicas}, endpoint_mode: dnsrr}}\n"
            for i in range(n)
        )
        (folder / "stack.yml").write_text(
            f'version: "3.8"\nservices:\n{services}networks:\n  net: {{driver: overlay}}\n'
        )
        (folder / "images.yaml").write_text("".join(f"s{i:03d}: {web}\n" for i in range(n)))
        for git_args in (("add", "-A"), ("-c", "user.name=b", "-c", "user.email=b@b", "commit",
                                          "-qm", f"{n} services x {replicas}"),
                         ("push", "-q", "origin", "HEAD:main")):  # fmt: skip
            subprocess.run(["git", "-C", str(work), *git_args], check=True, capture_output=True)

    try:
        for replicas in (0, 1):
            commit(replicas)
            started = time.monotonic()
            _, result = _sync(config)
            if replicas:
                wait_until(
                    f"{n} tasks running",
                    lambda: sum(_tasks_on(cluster, stack).values()) == n,
                    900, 2,
                )  # fmt: skip
            print(f"deploy of {n} services x {replicas}: {result} ({since(started):.0f} s)")
            passes = [_sync(config) for _ in range(args.rounds)]
            assert all(r == "noop" for _, r in passes), passes
            times = [s for s, _ in passes]
            per_node = _tasks_on(cluster, stack) if replicas else ""
            print(
                f"no-op pass over {n} services x {replicas} task(s) {per_node}: "
                f"median {statistics.median(times):.2f} s, max {max(times):.2f} s "
                f"({args.rounds} runs){'  (target <= 1 s)' if replicas else '  (baseline)'}",
                flush=True,
            )
    finally:
        subprocess.run(["docker", "-H", manager.url, "stack", "rm", stack], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("failover", "noop"))
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=2, help="agent tasks (1: Swarm moves it)")
    parser.add_argument("--window", type=float, default=30.0, help="kill within this many s")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    load_testenv()
    prefix = os.environ["TEST_STACK_PREFIX"]
    registry = os.environ["TEST_REGISTRY"]
    made = not ENV_FILE.exists()
    if made:
        run_script("up", timeout=600)
    cluster = Cluster.from_env_file()
    try:
        if args.only in (None, "noop"):
            web = f"{registry}/{prefix}/multinode-web:1"
            subprocess.run(["docker", "build", "-q", "-t", web, "-"], input=build_context(),
                           check=True, capture_output=True)  # fmt: skip
            subprocess.run(["docker", "push", "-q", web], check=True, capture_output=True)
            bench_noop(cluster, web.replace(registry, cluster.registry, 1), prefix, args)
        if args.only in (None, "failover"):
            built = build_agent_images(registry, os.environ["TEST_BASE_IMAGE"], prefix)
            images = {k: v.replace(registry, cluster.registry, 1) for k, v in built.items()}
            bench_failover(cluster, images, prefix, args)
    finally:
        cluster.close()
        if made:
            run_script("down", timeout=300)


if __name__ == "__main__":
    main()
