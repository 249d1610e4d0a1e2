"""Soak benchmark of the agent (issue 12): the real daemon for hours, does anything grow?

    scripts/testenv.sh up docker && . .venv/bin/activate      (as root)
    python bench/reconciler/soak.py [--minutes 120] [--interval 5] [--change-every 60] [--window 60]

Runs ``reconciler run`` as a subprocess (a pass every ``--interval`` seconds, jitter 0) against a
bare git remote holding the e2e test stack (``web`` checked on its host port, ``api`` with 2
replicas through the probe container: the harness of tests/e2e/reconciler_e2e) on the real
single-node Swarm, and every ``--change-every`` seconds pushes a release, alternating a bad one
(both services on image tag 3, whose /health answers 500: the agent must roll it back and push a
revert) and a good one (tags 1 and 2 in turn: the agent must apply it). Each release also sets
``SOAK_RELEASE=<n>`` on ``web``, so no two render the same: a bad release is never refused as a
quarantined rendering but rolled back and reverted each time. A release is pushed only once the
previous one is settled (applied, or its revert is on the remote; the developer's clone pulls
the revert first), so a slow one delays the next ("late" in the report).

The agent is sampled from /proc/<pid> (VmRSS, open descriptors, threads, child processes), its
pass results and durations from its status.json (every pass, polled every second) and its
``reconciler_passes_total`` from /metrics. The figures come from two quiet windows of
``--window`` seconds with no release pushed, each figure the window's median: the *start* one
after a warm-up (the first deploy, one bad and one good release, so every code path has run once)
and the *end* one after the last release settled. ``--minutes`` is the time between the two
windows; the warm-up and the windows add about ``2 x change-every + 2 x window`` to the run.
Printed: RSS, fds, threads and children (start, end, change), the duration of the noop passes in
each window (p50 and max), the passes by result, the releases pushed, the reverts pushed, and the
two errors that must never happen: a bad release not reverted (or reverted twice), a good release
reverted.

Targets (exit 1 when one fails): RSS and fds at the end at most 10 % above the start (a drop is
not a leak); 0 bad releases not reverted exactly once; 0 good releases reverted or not applied;
no ``failed`` pass; the agent alive and serving /metrics at the end, and stopping with exit 0.
Threads, children and pass duration are printed, not judged.

Written to .cache/artifacts/: soak.json (figures, every release), soak-samples.csv (a /proc sample
every 2 s), soak-passes.csv (every pass), soak-agent.log (the agent's log). The stack, probe
containers, the agent and the temp directory are removed at the end, also on Ctrl-C or SIGTERM.

tests/e2e/reconciler_e2e/test_soak.py runs the same code for about 2 minutes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))  # the harness imports scripts.remove_stack

from reconciler_support.e2e import (  # noqa: E402
    STACK_DIR,
    Env,
    build_images,
    free_port,
    images_yaml,
    stack_yaml,
    stop,
)
from reconciler_support.gitrepo import Remote, git  # noqa: E402
from reconciler_support.testenv import load_testenv  # noqa: E402

ARTIFACTS = ROOT / ".cache" / "artifacts"
GROWTH_TARGET = 0.10  # RSS and fds at the end at most 10 % above the start
_REVERT_OF = re.compile(r"^Driftless-Revert-Of: ([0-9a-f]{40})\s*$", re.M)
_RESULTS = ("success", "noop", "refused", "rolled_back", "failed", "error")


@dataclass(frozen=True)
class Options:
    minutes: float = 120.0  # between the start and the end window
    interval: float = 5.0  # the agent's sync.interval
    change_every: float = 60.0  # a release pushed this often (once the previous one settled)
    window: float = 60.0  # each quiet window, sampled every second
    settle_timeout: float = 300.0  # a release not applied or reverted by then counts as an error
    sample_every: float = 2.0  # the /proc series between the windows


# ------------------------------------------------------------------------------ read-outs
@dataclass(frozen=True)
class ProcSample:
    at: float  # seconds since the agent started
    rss_kib: int
    fds: int
    threads: int
    children: int


def proc_sample(pid: int, since: float) -> ProcSample:
    """The agent's resident memory, open descriptors, threads and child processes now."""
    fields: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return ProcSample(
        at=round(time.monotonic() - since, 1),
        rss_kib=int(fields["VmRSS"].split()[0]),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=int(fields["Threads"]),
        children=_children(pid),
    )


def _children(pid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4: the parent's pid
            count += 1
    return count


Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Series:
    """Every sample of an exposition, by name and labels (without stack and environment)."""
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = frozenset(
                (k, v) for k, v in s.labels.items() if k not in ("stack", "environment")
            )
            out[(s.name, labels)] = float(s.value)
    return out


def labelled(series: Series, name: str, label: str) -> dict[str, float]:
    """label value -> sample value of one metric with one label of its own."""
    return {dict(k[1])[label]: v for k, v in series.items() if k[0] == name and k[1]}


def passes_by_result(series: Series) -> dict[str, int]:
    counts = labelled(series, "reconciler_passes_total", "result")
    return {r: int(counts.get(r, 0)) for r in _RESULTS}


def applied_revision(series: Series) -> str | None:
    revs = labelled(series, "reconciler_applied_revision_info", "revision")
    return next((rev for rev, v in revs.items() if v == 1), None)


@dataclass
class PassLog:
    """Every pass the agent records, read from its status.json (``history[0]`` is the last pass;
    repeated noop passes are merged into one entry whose duration is the last one's), polled
    more often than passes run. ``seen`` is when it was read (seconds since the agent started)."""

    path: Path
    entries: dict[str, tuple[float, str, float]] = field(default_factory=dict)

    def poll(self, now: float) -> None:
        try:
            history = json.loads(self.path.read_text())["history"]
        except (OSError, ValueError, KeyError):
            return  # not written yet
        for h in history:
            key = f"{h['finished_at']} {h['count']}"
            if key not in self.entries:
                self.entries[key] = (now, h["result"], float(h["duration_seconds"]))

    def durations(self, since: float, until: float, result: str = "noop") -> list[float]:
        return [d for seen, r, d in self.entries.values() if since <= seen <= until and r == result]


def reverts_on(remote: Remote) -> Counter[str]:
    """How many revert commits on the remote name each reverted commit."""
    return Counter(_REVERT_OF.findall(git(remote.bare, "log", "--format=%B", "main")))


# ------------------------------------------------------------------------------ the run
@dataclass
class Release:
    number: int
    kind: str  # good | bad
    tag: str
    sha: str
    pushed_at: float  # seconds since the agent started
    late: bool  # pushed after its slot: the previous release was still settling
    settled_after: float | None = None  # seconds until applied (good) or reverted (bad)
    outcome: str = "pending"  # applied | reverted | good release reverted | not settled


@dataclass
class Window:
    """A quiet stretch (no release pushed): /proc every second, and the passes that ended in it
    by result, with the durations of the noop ones."""

    name: str
    samples: list[ProcSample]
    results: Counter[str]
    noop_seconds: list[float]

    @property
    def pass_p50(self) -> float | None:
        return statistics.median(self.noop_seconds) if self.noop_seconds else None

    @property
    def pass_max(self) -> float | None:
        return max(self.noop_seconds, default=None)

    def median(self, what: str) -> float:
        return float(statistics.median(getattr(s, what) for s in self.samples))

    def spread(self, what: str) -> tuple[int, int]:
        values = [getattr(s, what) for s in self.samples]
        return min(values), max(values)


class AgentDied(RuntimeError):
    pass


@dataclass
class Soak:
    """Drives the agent of ``env`` (its remote already holds a first deployable commit)."""

    env: Env
    options: Options
    out: TextIO = sys.stdout
    releases: list[Release] = field(default_factory=list)
    series: list[ProcSample] = field(default_factory=list)
    agent: subprocess.Popen[str] | None = None
    _t0: float = 0.0
    _next_slot: float = 0.0
    _good_tag: str = "1"
    _last_sample: float = 0.0
    exit_code: int | None = None  # the agent's, once stopped
    passlog: PassLog = field(init=False)

    def __post_init__(self) -> None:
        self.passlog = PassLog(self.env.state_dir / "status.json")

    def run(self) -> Report:
        o = self.options
        self.env.write_config(
            sync={"interval": f"{o.interval}s", "jitter": "0s", "retry_interval": f"{o.interval}s"}
        )
        self.agent = self.env.start("run")
        self._t0 = time.monotonic()
        try:
            return self._run()
        finally:
            exit_code = stop(self.agent, timeout=180)
            self.say(f"agent stopped (exit {exit_code})")
            self.exit_code = exit_code

    def _run(self) -> Report:
        o, env = self.options, self.env
        first = env.remote.head()
        self.say(f"agent pid {self.pid}: waiting for the first deploy of {first and first[:12]}")
        if not self._until("the first deploy", lambda: applied_revision(self._scrape()) == first):
            raise AgentDied(f"the first deploy was not applied: see {env.root / 'agent.log'}")
        self._next_slot = time.monotonic()
        for kind in ("bad", "good"):  # warm-up: every code path once before the start window
            self._release(kind)
        start = self._window("start")
        deadline = time.monotonic() + o.minutes * 60
        kind = "bad"
        while max(self._next_slot, time.monotonic()) < deadline:
            self._release(kind)
            kind = "good" if kind == "bad" else "bad"
        end = self._window("end")
        return self._report(start, end)

    @property
    def pid(self) -> int:
        assert self.agent is not None
        return self.agent.pid

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self._t0:7.0f}s] {text}", file=self.out, flush=True)

    # -------------------------------------------------------------- waiting, sampling
    def _alive(self) -> None:
        assert self.agent is not None
        if self.agent.poll() is not None:
            raise AgentDied(f"the agent exited with {self.agent.returncode}")

    def _poll_passes(self) -> None:
        self.passlog.poll(round(time.monotonic() - self._t0, 1))

    def _sample(self) -> ProcSample:
        self._alive()
        self._poll_passes()
        sample = proc_sample(self.pid, self._t0)
        self._last_sample = time.monotonic()
        self.series.append(sample)
        return sample

    def _scrape(self) -> Series:
        url = f"http://127.0.0.1:{self.env.settings['http_port']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return parse_metrics(response.read().decode())

    def _until(self, what: str, check: Callable[[], Any], timeout: float | None = None) -> Any:
        """Poll ``check`` every second (sampling /proc meanwhile) until it is truthy."""
        deadline = time.monotonic() + (timeout or self.options.settle_timeout)
        while True:
            if time.monotonic() - self._last_sample >= self.options.sample_every:
                self._sample()
            self._alive()
            self._poll_passes()
            try:
                value = check()
            except OSError:  # the agent's HTTP server busy or restarting: ask again
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                return None
            time.sleep(1)

    def _idle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self._until("time to pass", lambda: time.monotonic() >= end, seconds + 5)

    def _window(self, name: str) -> Window:
        samples = []
        self._poll_passes()
        begin = time.monotonic() - self._t0
        end = time.monotonic() + self.options.window
        while time.monotonic() < end:
            samples.append(self._sample())
            time.sleep(1)
        self._poll_passes()
        until = time.monotonic() - self._t0
        results = Counter(
            r for seen, r, _ in self.passlog.entries.values() if begin < seen <= until
        )
        window = Window(name, samples, results, self.passlog.durations(begin, until))
        self.say(
            f"{name} window: RSS {window.median('rss_kib') / 1024:.1f} MiB, "
            f"{window.median('fds'):.0f} fds, {window.median('threads'):.0f} threads, "
            f"passes {dict(results)}"
        )
        self._next_slot = time.monotonic()
        return window

    # -------------------------------------------------------------- releases
    def _release(self, kind: str) -> Release:
        slot = self._next_slot
        if time.monotonic() < slot:
            self._idle(slot - time.monotonic())
        late = time.monotonic() - slot > 1
        number = len(self.releases) + 1
        if kind == "good":
            self._good_tag = "2" if self._good_tag == "1" else "1"
        tag = self._good_tag if kind == "good" else "3"
        sha = self._push(number, kind, tag)
        pushed = time.monotonic()
        self._next_slot = pushed + self.options.change_every
        release = Release(number, kind, tag, sha, round(pushed - self._t0, 1), late)
        self.releases.append(release)
        self._settle(release, pushed)
        self.say(
            f"release {number} ({kind}, tag {tag}) {sha[:12]}: {release.outcome}"
            f" after {release.settled_after} s" + (" (late)" if late else "")
        )
        return release

    def _push(self, number: int, kind: str, tag: str) -> str:
        env = self.env
        image = env.images[tag]
        extra = f'    environment:\n      SOAK_RELEASE: "{number}"\n'
        return env.remote.write(
            {
                f"{STACK_DIR}/stack.yml": stack_yaml(env.port, env.prefix, extra=extra),
                f"{STACK_DIR}/images.yaml": images_yaml(image, image),
            },
            f"Soak release {number} ({kind}): web and api to {tag}",
        )

    def _settle(self, release: Release, pushed: float) -> None:
        def outcome() -> str | None:
            reverts = reverts_on(self.env.remote)
            if release.kind == "bad":
                return "reverted" if reverts[release.sha] else None
            if reverts[release.sha]:
                return "good release reverted"
            return "applied" if applied_revision(self._scrape()) == release.sha else None

        release.outcome = self._until(f"release {release.number}", outcome) or "not settled"
        release.settled_after = round(time.monotonic() - pushed, 1)

    # -------------------------------------------------------------- the report
    def _report(self, start: Window, end: Window) -> Report:
        serving = True
        try:
            final = self._scrape()
        except OSError:
            serving, final = False, {}
        return Report(
            options=self.options,
            start=start,
            end=end,
            releases=self.releases,
            reverts=reverts_on(self.env.remote),
            passes=passes_by_result(final),
            reverts_metric=int(final.get(("reconciler_reverts_pushed_total", frozenset()), -1)),
            serving_metrics=serving,
            alive=self.agent is not None and self.agent.poll() is None,
        )


@dataclass
class Report:
    options: Options
    start: Window
    end: Window
    releases: list[Release]
    reverts: Counter[str]  # reverted sha -> revert commits naming it
    passes: dict[str, int]
    reverts_metric: int
    serving_metrics: bool
    alive: bool
    exit_code: int | None = None  # the agent's, on SIGTERM at the end

    def _of(self, kind: str) -> list[Release]:
        return [r for r in self.releases if r.kind == kind]

    @property
    def bad_not_reverted_once(self) -> list[Release]:
        return [r for r in self._of("bad") if self.reverts[r.sha] != 1]

    @property
    def good_reverted_or_not_applied(self) -> list[Release]:
        return [r for r in self._of("good") if self.reverts[r.sha] or r.outcome != "applied"]

    def growth(self, what: str) -> float:
        start = self.start.median(what)
        return (self.end.median(what) - start) / start if start else 0.0

    def failures(self) -> list[str]:
        out = [
            f"{name} grew by {self.growth(what):+.1%} (target <= +{GROWTH_TARGET:.0%})"
            for name, what in (("RSS", "rss_kib"), ("open fds", "fds"))
            if self.growth(what) > GROWTH_TARGET
        ]
        wrong = [*self.bad_not_reverted_once, *self.good_reverted_or_not_applied]
        out += [
            f"{r.kind} release {r.number} ({r.sha[:12]}): {r.outcome}, "
            f"{self.reverts[r.sha]} reverts"
            for r in wrong
        ]
        if self.passes.get("failed"):
            out.append(f"{self.passes['failed']} failed passes")
        if not (self.alive and self.serving_metrics):
            out.append("the agent was not alive and serving /metrics at the end")
        if self.exit_code not in (None, 0):
            out.append(f"the agent exited with {self.exit_code} on SIGTERM")
        return out

    def text(self) -> str:
        o = self.options
        lines = [
            f"Soak: {o.minutes:g} min between the windows, a pass every {o.interval:g} s, "
            f"a change every {o.change_every:g} s, windows of {o.window:g} s (medians)",
            "",
            f"{'metric':<24}{'start':>10}{'end':>10}{'change':>10}   target",
        ]
        for name, what, scale in (
            ("RSS (MiB)", "rss_kib", 1024),
            ("open fds", "fds", 1),
            ("threads", "threads", 1),
            ("child processes", "children", 1),
        ):
            start, end = self.start.median(what) / scale, self.end.median(what) / scale
            target = ""
            if what in ("rss_kib", "fds"):
                ok = self.growth(what) <= GROWTH_TARGET
                target = f"<= +{GROWTH_TARGET:.0%}  {'PASS' if ok else 'FAIL'}"
            change = f"{self.growth(what):+.1%}" if start else "-"
            lines.append(f"{name:<24}{start:>10.1f}{end:>10.1f}{change:>10}   {target}")
        for name, attr in (("noop pass p50 (s)", "pass_p50"), ("noop pass max (s)", "pass_max")):
            a, b = getattr(self.start, attr), getattr(self.end, attr)
            lines.append(f"{name:<24}{_num(a):>10}{_num(b):>10}")
        for w in (self.start, self.end):
            lines.append(f"passes in the {w.name} window: " + _counts(w.results))
        lines += ["", self._counts()]
        failures = self.failures()
        lines += ["", "targets: " + ("all PASS" if not failures else "FAIL")]
        lines += [f"  - {f}" for f in failures]
        return "\n".join(lines)

    def _counts(self) -> str:
        good, bad = self._of("good"), self._of("bad")
        settle = {
            kind: _num(statistics.median(x) if x else None)
            for kind, x in (
                ("good", [r.settled_after for r in good if r.settled_after is not None]),
                ("bad", [r.settled_after for r in bad if r.settled_after is not None]),
            )
        }
        return "\n".join([
            "passes by result (whole run): " + _counts(self.passes),
            f"releases pushed: {len(good)} good, {len(bad)} bad (warm-up included), "
            f"{sum(r.late for r in self.releases)} late; median seconds to applied {settle['good']}"
            f", to reverted {settle['bad']}",
            f"reverts pushed: {sum(self.reverts.values())} on the remote "
            f"(agent's counter {self.reverts_metric})",
            f"bad releases not reverted exactly once: {len(self.bad_not_reverted_once)}"
            " (must be 0)",
            f"good releases reverted or not applied: {len(self.good_reverted_or_not_applied)}"
            " (must be 0)",
        ])  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        def window(w: Window) -> dict[str, Any]:
            figures = {k: w.median(k) for k in ("rss_kib", "fds", "threads", "children")}
            spread = {k: w.spread(k) for k in ("rss_kib", "fds", "threads", "children")}
            return {"median": figures, "min_max": spread, "passes": dict(w.results),
                    "noop_pass_seconds": w.noop_seconds}  # fmt: skip

        return {
            "options": asdict(self.options),
            "start": window(self.start),
            "end": window(self.end),
            "growth": {k: self.growth(k) for k in ("rss_kib", "fds", "threads")},
            "passes": self.passes,
            "releases": [asdict(r) for r in self.releases],
            "reverts_on_remote": dict(self.reverts),
            "reverts_metric": self.reverts_metric,
            "agent_exit_code": self.exit_code,
            "failures": self.failures(),
        }


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def soak(env: Env, options: Options, out: TextIO = sys.stdout) -> tuple[Report, Soak]:
    """Run the soak on ``env``; the agent is stopped afterwards, the stack is the caller's."""
    driver = Soak(env, options, out)
    report = driver.run()
    report.exit_code = driver.exit_code
    return report, driver


# ------------------------------------------------------------------------------ the command
class _Interrupted(Exception):
    """SIGTERM: cleaned up like Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted(signum)


def make_env(root: Path) -> Env:
    """Like tests/e2e/reconciler_e2e/conftest.py: images 1, 2 (good) and 3 (bad) in the local
    registry, a remote holding the two-service stack on tag 1, a stack named by the prefix."""
    prefix = os.environ["TEST_STACK_PREFIX"]
    base = os.environ["TEST_BASE_IMAGE"]
    images = build_images(os.environ["TEST_REGISTRY"], base, prefix)
    remote = Remote(root)
    port = free_port()
    env = Env(f"{prefix}soak{uuid.uuid4().hex[:6]}", prefix, root, remote, images, port, base)
    remote.write(
        {
            f"{STACK_DIR}/stack.yml": stack_yaml(port, prefix),
            f"{STACK_DIR}/images.yaml": images_yaml(images["1"], images["1"]),
        },
        "Deploy web and api at 1",
    )
    return env


def _write_artifacts(report: Report | None, driver: Soak | None, root: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if report is not None:
        (ARTIFACTS / "soak.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if driver is not None:
        with (ARTIFACTS / "soak-samples.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["seconds", "rss_kib", "fds", "threads", "children"])
            writer.writerows([s.at, s.rss_kib, s.fds, s.threads, s.children] for s in driver.series)
        with (ARTIFACTS / "soak-passes.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["seen_seconds", "result", "duration_seconds"])
            writer.writerows(sorted(driver.passlog.entries.values()))
    if (root / "agent.log").exists():
        shutil.copy(root / "agent.log", ARTIFACTS / "soak-agent.log")


@dataclass
class _Run:
    report: Report | None = None
    driver: Soak | None = None


def _run(options: Options, root: Path, result: _Run) -> None:
    env = make_env(root)
    try:
        print(f"stack {env.stack}, remote {env.remote.url}, state {env.state_dir}", flush=True)
        driver = Soak(env, options)
        result.driver = driver
        result.report = driver.run()
        result.report.exit_code = driver.exit_code
    finally:
        env.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=120.0, help="between the two windows")
    parser.add_argument("--interval", type=float, default=5.0, help="the agent's sync.interval")
    parser.add_argument("--change-every", type=float, default=60.0, help="seconds per release")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of each window")
    args = parser.parse_args(argv)
    load_testenv()
    options = Options(args.minutes, args.interval, args.change_every, args.window)
    signal.signal(signal.SIGTERM, _on_sigterm)
    root = Path(tempfile.mkdtemp(prefix="driftless-soak-"))
    result = _Run()
    try:
        _run(options, root, result)
    except (KeyboardInterrupt, _Interrupted, AgentDied) as exc:
        print(f"soak stopped early: {exc!r}", file=sys.stderr)
        return 130 if not isinstance(exc, AgentDied) else 1
    finally:
        _write_artifacts(result.report, result.driver, root)
        shutil.rmtree(root, ignore_errors=True)
    assert result.report is not None
    print()
    print(result.report.text())
    print(f"\nfigures in {ARTIFACTS / 'soak.json'}")
    return 1 if result.report.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
