"""What must hold after every run, whatever was injected, and the tally the suite prints.

* the live stack is one release, the one the branch's head declares (so: the last good one or
  the new one), every task of it running: never a mix once the agent is settled;
* a revision is reverted only if it was at fault, and a revert is pushed at most once;
* nothing in git is lost: every release pushed is still on the branch (unless the run rewrote
  the branch on purpose);
* the agent is running and serving its status page and its metrics.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fault_support.lab import Lab, Release

RUNS_LOG = Path(__file__).resolve().parents[2] / ".cache" / "artifacts" / "faults-runs.log"
_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{40})")


def _tag(image: str) -> str:
    return image.split("@")[0].rsplit(":", 1)[1]


def reverted(lab: Lab) -> dict[str, int]:
    """Revision → how many revert commits on the branch name it."""
    counts: dict[str, int] = {}
    for body in lab.env.remote.log("%B"):
        for sha in _REVERTS.findall(body):
            counts[sha] = counts.get(sha, 0) + 1
    return counts


def _head_tag(lab: Lab) -> str:
    text = lab.env.remote.show("desired-state/e2e/images.yaml")
    return _tag(text.splitlines()[0].split(":", 1)[1].strip())


def _live_now(lab: Lab, want: str) -> list[str]:
    problems = []
    for name, replicas in (("web", 1), ("api", 2)):
        spec = lab.env.image_tag(name)
        running = lab.env.running_tags(name)
        if spec != want or running != [want] * replicas:
            problems.append(
                f"live {name}: spec {spec}, running {running}; the branch's head declares {want}"
            )
    return problems


def _live(lab: Lab) -> list[str]:
    """The spec must be the head's at once; its tasks may take Swarm a few seconds to restart
    (an engine restarted during the run restarts every container: that is Swarm's to mend)."""
    want = _head_tag(lab)
    deadline = time.monotonic() + 30
    while (problems := _live_now(lab, want)) and time.monotonic() < deadline:
        if any(lab.env.image_tag(name) != want for name in ("web", "api")):
            return problems
        time.sleep(1)
    return problems


def _reverts(lab: Lab, before: dict[str, int]) -> tuple[list[str], int]:
    """The reverts this run pushed: each of a bad release, and none twice."""
    problems, wrongful = [], 0
    bad = {r.sha for r in lab.releases if not r.good}
    for sha, count in reverted(lab).items():
        if count == before.get(sha, 0):
            continue
        if count > 1:
            problems.append(f"{sha[:12]} reverted {count} times")
        if sha not in bad:
            wrongful += 1
            problems.append(f"{sha[:12]} reverted but it was not at fault")
    return problems, wrongful


def _git(lab: Lab) -> list[str]:
    return [
        f"release {r.sha[:12]} ({r.tag}) is no longer on the branch"
        for r in lab.releases
        if r.sha not in lab.rewritten and not lab.head_has(r.sha)
    ]


def _agent(lab: Lab) -> list[str]:
    if not lab.agent_alive():
        return ["the agent is not running"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if lab.serving():
            return []
        time.sleep(0.5)
    return ["the agent does not serve its status page and metrics"]


def check(lab: Lab, release: Release, before: dict[str, int]) -> tuple[list[str], int]:
    """The violations after a run, and how many reverts hit a revision not at fault.
    ``before``: :func:`reverted` when the run started."""
    revert_problems, wrongful = _reverts(lab, before)
    problems = _agent(lab) + _live(lab) + revert_problems + _git(lab)
    on_branch = release.sha not in lab.rewritten and lab.head_has(release.sha)
    if not release.good and on_branch and reverted(lab).get(release.sha, 0) != 1:
        problems.append(f"bad release {release.sha[:12]} is on the branch, not reverted")
    return problems, wrongful


@dataclass
class Tally:
    """What the suite prints: faults injected, runs, invariant violations, wrongful reverts."""

    faults: set[str] = field(default_factory=set)
    runs: int = 0
    violations: int = 0
    wrongful_reverts: int = 0
    failed_runs: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def add(self, run_id: str, fault: str, problems: list[str], wrongful: int, took: float) -> None:
        self.faults.add(fault)
        self.runs += 1
        self.violations += len(problems)
        self.wrongful_reverts += wrongful
        self.seconds.append(round(took, 1))
        if problems:
            self.failed_runs.append(f"{run_id}: {'; '.join(problems)}")
        RUNS_LOG.parent.mkdir(parents=True, exist_ok=True)
        with RUNS_LOG.open("a") as log:  # as the runs go, for whoever watches a long suite
            verdict = "; ".join(problems) or "ok"
            log.write(f"{time.strftime('%H:%M:%S')} {run_id} {took:.1f}s {verdict}\n")

    def line(self) -> str:
        return (
            f"fault injection: {len(self.faults)} faults injected, {self.runs} runs, "
            f"{self.violations} invariant violations, {self.wrongful_reverts} reverts of "
            "revisions not at fault"
        )

    def write(self, path: Path) -> None:
        data = asdict(self) | {"faults": sorted(self.faults)}
        path.write_text(json.dumps(data, indent=2) + "\n")


TALLY = Tally()
