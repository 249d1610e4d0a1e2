"""Progressive delivery benchmark: a good release and four bad ones, canary-checked, under load.

    scripts/testenv.sh up docker && . .venv/bin/activate      (as root)
    python bench/platform/bench_progressive.py [--faults version,errors,slow,crash]

Deploys the whole production stack with the reconciler exactly as tests/e2e/platform does (same
harness: a host process whose config points the canary analyses at the stack's Prometheus), under
the TEST_STACK_PREFIX, keeps a steady load through Nginx (the harness's ``load()``: 4 x 6 = 24
requests/s, under nginx's 50 r/s per address; 429s are counted apart from failures) and prints,
then writes to .cache/artifacts/bench-progressive.json:

- a good release (a tag bump of api+migrate): seconds from the commit to all 3 API replicas on
  the new image and to the reconciler's pass having verified it, failed requests (target 0); next
  to a baseline from the same run, the same release with the canary step off
  (``driftless.rollout.canary: "0"`` on the api in the benchmark's desired-state repository), and
  their difference (to read "total <= rolling update + analysis window" off);
- a bad release of each kind, an API image built with ``API_FAULT`` (``version=0.0.0``,
  ``errors=/products``, a route the load hits, ``slow=10``, ``crash-after=20s``): seconds from
  its first task running (Swarm's timestamp of the task's running state; tasks sampled every
  0.5 s through the Docker API) to the detection (the reconciler's log line ``canary of api
  failed: ...``), the most API tasks running the bad image at once (target <= 1 of 3), seconds
  from the pass's start (its history entry's ``started_at``; from the commit as an upper bound)
  to every replica back on the old image and to the revert pushed (target <= 60 s), failed
  requests through Nginx (target 0), and the share of answers served by the bad release between
  the merge and the recovery. The API names its version in no response header, so that share
  is measured on the load's ``/version`` requests (every other request, about 12/s, through
  Nginx): the fraction whose ``image_tag`` is not the stable release's (a ``version=X`` build
  names X). For a bad release that is never stopped it runs from the merge to its
  verification. The JSON keeps, per bad release, the running tasks by tag at each change and
  every bad task's states (Swarm's timestamps and when they were seen) as evidence.

The reconciler's log is kept next to the figures (bench-progressive-reconciler.log) as evidence;
the stack is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e" / "platform"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))  # the harness imports scripts.remove_stack

from conftest import _load_env_file  # noqa: E402  (the test environment's variables)
from stack_harness import (  # noqa: E402
    SECRETS_SCRIPT,
    DesiredRepo,
    LoadResult,
    Reconciler,
    Stack,
    build_images,
    load,
    prepare_stack,
    revision_sha,
    run,
    wait_until,
)

ARTIFACTS = ROOT / ".cache" / "artifacts"
#: kind -> API_FAULT of the bad build (api/README.md)
FAULTS = {
    "version": "version=0.0.0",
    "errors": "errors=/products",  # the load generator lists products on every other request
    "slow": "slow=10",
    "crash": "crash-after=20s",
}
#: the reconciler's log lines that say a release was judged bad (reconciler/engine/rollout.py)
DETECTED = ("canary of api failed", "canary of api inconclusive", "verify failed")
PASS_TIMEOUT = 900.0
SHARE_METHOD = (
    "share of the load's /version answers through Nginx (about 12/s) that did not name the stable "
    "image tag (the API names its version in no response header)"
)


def tag(image: str) -> str:
    return image.rsplit(":", 1)[1]


def epoch(stamp: str) -> float:
    """An ISO 8601 time (Docker's has nanoseconds, Python reads microseconds) as epoch seconds."""
    stamp = re.sub(r"(\.\d{6})\d+", r"\1", stamp).replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


def since(t: float | None, start: float) -> float | None:
    return None if t is None else round(t - start, 1)


# ------------------------------------------------------------------------------------ images
def build_fault_images(registry: str) -> dict[str, str]:
    """One API image per fault, built from this checkout like a release (IMAGE_TAG = its tag)."""
    base = (ROOT / ".cache" / "base-image").read_text().strip()
    version = re.search(r'^version = "(.*)"', (ROOT / "pyproject.toml").read_text(), re.M)
    revision = run("git", "-C", ROOT, "rev-parse", "HEAD").strip()
    out = {}
    for kind, fault in FAULTS.items():
        ref = f"{registry}/driftless/api:bench-fault-{kind}"
        run(
            "docker", "build", "-q", "-f", ROOT / "Dockerfile.api",
            "--build-arg", f"PYTHON_IMAGE={base}",
            "--build-arg", f"VERSION={version.group(1) if version else '0.0.0'}",
            "--build-arg", f"REVISION={revision}",
            "--build-arg", f"IMAGE_TAG={tag(ref)}",
            "--build-arg", f"API_FAULT={fault}",
            "-t", ref, ROOT,
            env={**os.environ, "DOCKER_BUILDKIT": "0"}, timeout=1800,
        )  # fmt: skip
        run("docker", "push", "-q", ref)
        out[kind] = ref
    return out


# ------------------------------------------------------------------------------ task sampling
@dataclass(frozen=True)
class Sample:
    at: float  # epoch seconds
    serving: Counter[str]  # image -> tasks in state running (draining ones included)
    desired: Counter[str]  # image -> running tasks whose desired state is running


@dataclass
class TaskHistory:
    """One task as sampled: its image and each state it was seen in, with Swarm's timestamp of
    that state and when the sampler first saw it (epoch seconds)."""

    image: str
    states: list[tuple[str, float, float]] = field(default_factory=list)

    def saw(self, state: str, stamp: float, now: float) -> None:
        if not self.states or self.states[-1][0] != state:
            self.states.append((state, stamp, now))

    def running(self) -> tuple[float, float] | None:
        """(Swarm's timestamp, first seen) of its running state, if it ran."""
        return next(((ts, seen) for st, ts, seen in self.states if st == "running"), None)


class TaskSampler:
    """The API's tasks through the Docker API every ``every`` seconds, in a thread: what each
    running task runs (draining ones included), and each task's states."""

    def __init__(self, service: str, every: float = 0.5) -> None:
        self.service, self.every = service, every
        self.client = docker.from_env()
        self.samples: list[Sample] = []
        self.tasks: dict[str, TaskHistory] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="task-sampler", daemon=True)

    def __enter__(self) -> TaskSampler:
        self._poll()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.client.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self._poll()
            except Exception as exc:  # a slow engine answer must not end the sampling
                print(f"  (task sampling: {type(exc).__name__}: {exc})", flush=True)

    def _poll(self) -> None:
        now = time.time()
        serving: Counter[str] = Counter()
        desired: Counter[str] = Counter()
        for task in self.client.api.tasks(filters={"service": self.service}):
            status, image = task["Status"], task["Spec"]["ContainerSpec"]["Image"].split("@")[0]
            history = self.tasks.setdefault(task["ID"], TaskHistory(image))
            history.saw(status.get("State", "?"), epoch(status["Timestamp"]), now)
            if status.get("State") != "running":
                continue
            serving[image] += 1
            if task.get("DesiredState") == "running":
                desired[image] += 1
        self.samples.append(Sample(now, serving, desired))

    def latest(self) -> Sample:
        return self.samples[-1]

    def ran(self, image: str) -> list[tuple[float, float]]:
        found = (h.running() for h in self.tasks.values() if h.image == image)
        return [r for r in found if r is not None]

    def first_running(self, image: str) -> tuple[float | None, float | None]:
        """(Swarm's running timestamp, first seen running) of the first task on ``image``."""
        ran = self.ran(image)
        return min((r[0] for r in ran), default=None), min((r[1] for r in ran), default=None)

    def most_at_once(self, image: str) -> int:
        return max((s.serving[image] for s in self.samples), default=0)

    def recovered(self, stable: str, bad: str, replicas: int = 3) -> float | None:
        """When, after the last task on ``bad`` stopped running, every replica ran ``stable``
        and nothing else ran (None: ``bad`` never ran, or still does)."""
        last_bad = max((s.at for s in self.samples if s.serving[bad]), default=None)
        if last_bad is None:
            return None
        later = (s for s in self.samples if s.at > last_bad)
        back = (s.at for s in later if s.desired[stable] == replicas and set(s.serving) == {stable})
        return next(back, None)

    def story(self, image: str, t0: float) -> list[dict[str, Any]]:
        """The states of each task on ``image``, times relative to ``t0`` (evidence)."""
        return [
            {
                "task": tid[:12],
                "states": [
                    [st, round(ts - t0, 1), round(seen - t0, 1)] for st, ts, seen in h.states
                ],
            }
            for tid, h in self.tasks.items()
            if h.image == image
        ]

    def changes(self, t0: float) -> list[list[Any]]:
        """The running tasks by image tag, at each change (seconds from ``t0``)."""
        out: list[list[Any]] = []
        for s in self.samples:
            now = {tag(img): n for img, n in sorted(s.serving.items())}
            if not out or out[-1][1] != now:
                out.append([round(s.at - t0, 1), now])
        return out


# ------------------------------------------------------------------------- reconciler's side
def log_events(path: Path) -> list[dict[str, Any]]:
    """The reconciler's JSON log lines, each with ``t``: its time in epoch seconds."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "time" in event:
            event["t"] = epoch(event["time"])
            out.append(event)
    return out


def first_event(events: list[dict[str, Any]], after: float, *prefixes: str) -> dict[str, Any]:
    found = (e for e in events if e["t"] >= after and str(e.get("message")).startswith(prefixes))
    return next(found, {})


def wait_pass(rec: Reconciler, sha: str) -> dict[str, Any]:
    """The history entry of the pass that finished ``sha`` (success, rolled back or failed)."""

    def entry() -> dict[str, Any] | None:
        for item in rec.status().get("history", []):
            done = item.get("result") in ("success", "rolled_back", "failed")
            if done and revision_sha(item) == sha:
                return item  # type: ignore[no-any-return]
        return None

    return wait_until(f"the pass of {sha[:12]}", entry, PASS_TIMEOUT)  # type: ignore[no-any-return]


def set_canary(repo: DesiredRepo, count: int) -> str:
    """Commit ``driftless.rollout.canary: "count"`` on the api (a label: no task is replaced)."""
    repo.git("pull", "-q", "--rebase", "origin", "main")
    stack_file = repo.clone / "desired-state" / "base" / "stack.yml"
    text = stack_file.read_text()
    changed = re.sub(r'(driftless\.rollout\.canary: )"\d+"', rf'\g<1>"{count}"', text)
    assert changed.count("driftless.rollout.canary") == 1, "one canary label, on the api"
    stack_file.write_text(changed)
    repo.git("commit", "-qam", f"api: canary step of {count} task(s)")
    repo.git("push", "-q", "origin", "main")
    return repo.head()


# ------------------------------------------------------------------------------- the releases
@dataclass
class Bench:
    stack: Stack
    repo: DesiredRepo
    rec: Reconciler
    figures: dict[str, Any] = field(default_factory=dict)

    def bump(self, image: str, message: str) -> tuple[float, str]:
        committed = time.time()
        return committed, self.repo.bump({"api": image, "migrate": image}, message)


def load_figures(res: LoadResult) -> dict[str, Any]:
    return {
        "requests_sent": res.sent,
        "requests_failed": res.failed,
        "requests_rate_limited_429": res.limited,
        "failed_by_path": dict(res.failed_paths),
        "versions_seen": dict(res.versions),
        "failures_sample": res.failures[:3],
    }


def good_release(b: Bench, new: str, label: str) -> dict[str, Any]:
    service = f"{b.stack.name}_api"
    with TaskSampler(service) as sampler, load(b.stack, max_seconds=1200) as gen:
        time.sleep(3)  # traffic flows before the release
        committed, sha = b.bump(new, f"Release api {tag(new)}")
        wait_until(
            "3 replicas on the new image",
            lambda: sampler.latest().desired == Counter({new: 3}),
            PASS_TIMEOUT,
            every=0.5,
        )
        replicas = time.time()
        entry = wait_pass(b.rec, sha)
        time.sleep(2)
        res = gen.stop()
    assert entry["result"] == "success", entry
    row = {
        "release": tag(new),
        "canary": label,
        "seconds_commit_to_3_replicas_new": since(replicas, committed),
        "seconds_commit_to_verified": since(epoch(entry["finished_at"]), committed),
        "seconds_pass": round(float(entry["duration_seconds"]), 1),
        **load_figures(res),
    }
    print(json.dumps(row), flush=True)
    return row


def settle(b: Bench, stable: str) -> None:
    """Wait until the reconciler has applied the remote's head and 3 replicas run ``stable``."""
    b.rec.wait_applied(b.repo.head(), PASS_TIMEOUT)
    wait_until(
        f"3 replicas on {tag(stable)}",
        lambda: b.stack.running_images("api") == Counter({stable: 3}),
        300,
    )


def soft_wait(what: str, predicate: Callable[[], Any], timeout: float = 300) -> None:
    """Wait, but let the figures say what did not happen rather than end the run."""
    try:
        wait_until(what, predicate, timeout, every=0.5)
    except AssertionError as exc:
        print(f"  {exc}", flush=True)


def bad_share(res: LoadResult, stable: str, start: float, end: float) -> dict[str, Any]:
    """The share of /version answers between ``start`` and ``end`` (epoch) that the stable
    release did not give: only it and the bad build run then, and a build with
    ``API_FAULT=version=X`` names another tag than its own."""
    to_epoch = time.time() - time.monotonic()
    tags = [v for t, v in res.timeline if start <= t + to_epoch <= end]
    served = sum(1 for v in tags if v != tag(stable))
    share = round(100.0 * served / len(tags), 1) if tags else None
    return {
        "percent": share,
        "bad_answers": served,
        "answers": len(tags),
        "tags": dict(Counter(tags)),
    }


def bad_release(b: Bench, kind: str, bad: str, stable: str) -> dict[str, Any]:
    with TaskSampler(f"{b.stack.name}_api") as sampler, load(b.stack, max_seconds=1200) as gen:
        time.sleep(3)
        committed, sha = b.bump(bad, f"Release api {tag(bad)} (API_FAULT={FAULTS[kind]})")
        entry = wait_pass(b.rec, sha)
        if entry["result"] != "success":
            soft_wait("every replica back on the old image", lambda: sampler.recovered(stable, bad))
            soft_wait("the revert pushed", lambda: b.repo.head() != sha)
        time.sleep(2)
        res = gen.stop()
    row = {
        "kind": kind,
        "fault": FAULTS[kind],
        "release": tag(bad),
        "result": entry.get("result"),
        "reason": entry.get("reason"),
        **bad_timings(b, entry, sampler, committed, (bad, stable)),
        **load_figures(res),
    }
    row["bad_release_share"] = bad_share(res, stable, committed, row.pop("_share_end"))
    row["evidence"] = {
        "running_tasks": sampler.changes(committed),
        "bad_tasks": sampler.story(bad, committed),
    }
    print(json.dumps({k: v for k, v in row.items() if k != "evidence"}), flush=True)
    if entry["result"] == "success":  # not detected: the bad build serves; release the old one
        print(f"  {kind}: not detected; releasing {tag(stable)} again", flush=True)
        committed, sha = b.bump(stable, f"Release api {tag(stable)} (after {tag(bad)})")
        wait_pass(b.rec, sha)
    settle(b, stable)
    return row


def bad_timings(
    b: Bench,
    entry: dict[str, Any],
    sampler: TaskSampler,
    committed: float,
    images: tuple[str, str],
) -> dict[str, Any]:
    bad, stable = images
    events = log_events(b.rec.log_path)
    started = epoch(entry["started_at"])
    first, first_seen = sampler.first_running(bad)
    detected = first_event(events, committed, *DETECTED)
    revert = first_event(events, committed, "pushed revert")
    back = sampler.recovered(stable, bad)
    return {
        "detection": detected.get("message", "(not detected)"),
        "rollout_stopped": (b.rec.status().get("rollout") or {}).get("stopped", ""),
        "seconds_commit_to_pass_start": since(started, committed),
        "seconds_commit_to_first_bad_task_running": since(first, committed),
        "seconds_commit_to_first_bad_task_seen_running": since(first_seen, committed),
        "seconds_first_bad_task_running_to_detection": (
            since(detected.get("t"), first) if first is not None else None
        ),
        "most_api_tasks_on_bad_image_at_once": sampler.most_at_once(bad),
        "bad_tasks_started": len(sampler.ran(bad)),
        "seconds_pass_start_to_all_replicas_back_on_old": since(back, started),
        "seconds_pass_start_to_revert_pushed": since(revert.get("t"), started),
        "seconds_commit_to_all_replicas_back_on_old": since(back, committed),
        "seconds_commit_to_revert_pushed": since(revert.get("t"), committed),
        # the share is counted up to the recovery; a release never stopped, up to its verification
        "_share_end": back or epoch(entry["finished_at"]),
        "share_window": "merge to recovery" if back else "merge to verified (not recovered)",
    }


# ---------------------------------------------------------------------------------- the run
def good_releases(b: Bench, v1: str, v2: str) -> None:
    """v1 -> v2 with the canary step (as in production), then v2 -> v1 without it."""
    canary = good_release(b, v2, "on")
    set_canary(b.repo, 0)
    settle(b, v2)
    baseline = good_release(b, v1, "off")
    set_canary(b.repo, 1)
    settle(b, v1)
    keys = ("seconds_commit_to_3_replicas_new", "seconds_commit_to_verified")
    b.figures["good_release"] = {
        "with_canary": canary,
        "baseline_without_canary": baseline,
        "difference_seconds": {k: round(canary[k] - baseline[k], 1) for k in keys},
        "canary_window_seconds": 30,
    }


def first_deploy(rec: Reconciler, sha: str) -> None:
    t0 = time.monotonic()
    rec.start()
    rec.wait_applied(sha, PASS_TIMEOUT)
    print(f"first deploy of the whole stack: {time.monotonic() - t0:.0f} s", flush=True)


def run_bench(registry: str, kinds: list[str], figures: dict[str, Any]) -> None:
    name = f"{os.environ.get('TEST_STACK_PREFIX', 'dlt')}pp"
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    images = build_images(registry)
    faults = build_fault_images(registry)
    stack, variables = prepare_stack(name, workdir)
    repo = DesiredRepo(workdir)
    first = repo.init(images.local(images.api_v1))
    rec = Reconciler(workdir, name, repo, variables, probe_image=images.api_v1)
    b = Bench(stack, repo, rec, figures)
    try:
        first_deploy(rec, first)
        good_releases(b, images.api_v1, images.api_v2)
        figures["bad_releases"] = {}
        for kind in kinds:
            figures["bad_releases"][kind] = bad_release(b, kind, faults[kind], images.api_v1)
    finally:
        rec.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if rec.log_path.exists():
            shutil.copy(rec.log_path, ARTIFACTS / "bench-progressive-reconciler.log")
        stack.remove(SECRETS_SCRIPT)
        shutil.rmtree(workdir, ignore_errors=True)


# ------------------------------------------------------------------------------- the report
def print_good(good: dict[str, Any]) -> None:
    for key, title in (("with_canary", "canary on "), ("baseline_without_canary", "canary off")):
        r = good[key]
        print(
            f"good release, {title}: commit -> 3 replicas on the new image "
            f"{r['seconds_commit_to_3_replicas_new']} s, -> verified "
            f"{r['seconds_commit_to_verified']} s; failed {r['requests_failed']} of "
            f"{r['requests_sent']} (429s: {r['requests_rate_limited_429']})"
        )
    d = good["difference_seconds"]
    print(
        f"difference (canary on - off): {d['seconds_commit_to_3_replicas_new']:+} s to 3 replicas,"
        f" {d['seconds_commit_to_verified']:+} s to verified "
        f"(analysis window {good['canary_window_seconds']} s)"
    )


def print_bad(rows: dict[str, dict[str, Any]]) -> None:
    print(
        "\nbad releases (targets: at most 1 of 3 tasks on the bad image, back and reverted "
        "within 60 s of the pass's start, 0 failed requests)"
    )
    for kind, r in rows.items():
        share = r["bad_release_share"]
        print(
            f"{kind:>8} ({r['fault']}): {r['result']}; first task running "
            f"{r['seconds_commit_to_first_bad_task_running']} s after the commit, detected "
            f"{r['seconds_first_bad_task_running_to_detection']} s later; "
            f"at most {r['most_api_tasks_on_bad_image_at_once']} of 3 tasks on it; pass start -> "
            f"all back on the old image {r['seconds_pass_start_to_all_replicas_back_on_old']} s, "
            f"-> revert pushed {r['seconds_pass_start_to_revert_pushed']} s (from the commit: "
            f"{r['seconds_commit_to_all_replicas_back_on_old']} s / "
            f"{r['seconds_commit_to_revert_pushed']} s); failed {r['requests_failed']} of "
            f"{r['requests_sent']} {r['failed_by_path'] or ''}(429s: "
            f"{r['requests_rate_limited_429']}); served by the bad release, {r['share_window']}: "
            f"{share['percent']} % ({share['bad_answers']}/{share['answers']})"
        )
        print(f"{'':>10}detection: {r['detection'][:300]}")
    print(f"\n(bad release's share: {SHARE_METHOD})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"bad releases to run, comma-separated (default: {','.join(FAULTS)})",
    )
    opts = parser.parse_args()
    kinds = [k.strip() for k in opts.faults.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(FAULTS))
    if unknown:
        parser.error(f"unknown fault kinds {unknown}; known: {', '.join(FAULTS)}")
    # a TERM (timeout, CI) still runs the clean-up: reconciler stopped, stack removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    _load_env_file()
    registry = os.environ.get("TEST_REGISTRY", "127.0.0.1:5000")
    subprocess.run(
        [str(ROOT / "scripts" / "build-images.sh"), "stand-ins"], check=True, capture_output=True
    )
    figures: dict[str, Any] = {"share_method": SHARE_METHOD}
    out = ARTIFACTS / "bench-progressive.json"
    try:
        run_bench(registry, kinds, figures)
    finally:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=2))
    print()
    print_good(figures["good_release"])
    print_bad(figures["bad_releases"])
    print(f"\nfigures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
