"""The faults, where in a pass each is injected, and how each is undone.

A phase is either one the agent reports while a pass runs (``apply``, ``verify``, ``rollback``,
``revert``: the fault is injected as soon as the agent enters it) or one of ``fetch`` and
``preflight`` (the fault is in place before the release is pushed, so the pass's fetch or its
pre-flight meets it) or ``after`` (the release has settled).

``FAULTS=all`` runs every fault at every phase with a good and a bad release where both make
sense; otherwise (CI) every fault runs once, at its ``ci`` phase, and an outage lasts at most
``CI_HOLD`` seconds (still several of the agent's 2 s retries).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from fault_support.lab import Lab

BEFORE = ("fetch", "preflight")
#: the longest a fault lasts in the bounded run (CI)
CI_HOLD = 10.0
BAD_ONLY = ("rollback", "revert")


@dataclass(frozen=True)
class Fault:
    name: str
    phases: tuple[str, ...]
    inject: Callable[[Lab], None]
    clear: Callable[[Lab], None] = lambda lab: None
    hold: float = 0.0  # seconds the fault lasts
    ci: str = ""  # the phase of the bounded run (CI); the first phase when empty
    good_only: tuple[str, ...] = ()  # phases run with a good release only

    @property
    def ci_phase(self) -> str:
        return self.ci or self.phases[0]


@dataclass(frozen=True)
class Run:
    fault: Fault
    phase: str
    good: bool
    hold: float  # seconds the fault lasts in this run

    @property
    def id(self) -> str:
        return f"{self.fault.name}@{self.phase}-{'good' if self.good else 'bad'}"


def _fill(lab: Lab) -> None:
    """Fill the agent's state directory (a small tmpfs) to the last byte."""
    filler = lab.env.state_dir / "filler"
    subprocess.run(["fallocate", "-l", "64m", str(filler)], check=False, capture_output=True)
    with filler.open("ab") as out:  # what fallocate could not take
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass


def _unfill(lab: Lab) -> None:
    (lab.env.state_dir / "filler").unlink(missing_ok=True)


def _restart_after(damage: Callable[[Lab], None]) -> Callable[[Lab], None]:
    """Kill the agent, damage its state, and (in ``clear``) start it again."""

    def inject(lab: Lab) -> None:
        lab.kill_agent(signal.SIGKILL)
        damage(lab)

    return inject


def _corrupt(name: str) -> Callable[[Lab], None]:
    def damage(lab: Lab) -> None:
        path = lab.env.state_dir / name
        if path.exists():
            path.write_bytes(bytes(random.randrange(256) for _ in range(300)))

    return damage


def _truncate(name: str) -> Callable[[Lab], None]:
    def damage(lab: Lab) -> None:
        path = lab.env.state_dir / name
        if path.exists():
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])

    return damage


def _docker(*args: str) -> Callable[[Lab], None]:
    def act(lab: Lab) -> None:
        subprocess.run(
            ["docker", *[a.format(stack=lab.env.stack) for a in args]],
            check=False,
            capture_output=True,
            timeout=120,
        )

    return act


def _rewrite(lab: Lab) -> None:
    """Force-push the branch without its newest commit (the release in flight, or settled)."""
    head = lab.env.remote.head()
    count = len(lab.env.remote.log("%H"))
    lab.env.remote.rewrite(count - 1)
    if head:
        lab.rewritten.add(head)


def _start(lab: Lab) -> None:
    lab.start_agent()


def _proxy(which: str, mode: str, hold: float, phases: tuple[str, ...], ci: str = "") -> Fault:
    def proxy(lab: Lab) -> None:
        getattr(lab, which).set(mode)

    return Fault(
        f"{which.replace('_proxy', '')}-{mode}".replace("docker-down", "engine-socket-down"),
        phases,
        inject=proxy,
        clear=lambda lab: getattr(lab, which).set("up"),
        hold=hold,
        ci=ci,
    )


CATALOGUE: tuple[Fault, ...] = (
    Fault(
        "engine-restart",
        ("apply", "verify", "rollback"),
        lambda lab: lab.restart_engine(),
        ci="verify",
    ),
    _proxy("docker", "down", 30, ("fetch", "apply", "verify", "rollback"), ci="verify"),
    _proxy("registry", "down", 20, ("preflight", "apply", "verify"), ci="verify"),
    _proxy("registry", "error", 20, ("preflight", "apply", "verify"), ci="preflight"),
    _proxy("registry", "slow", 25, ("preflight", "verify"), ci="preflight"),
    _proxy("git_proxy", "down", 15, ("fetch", "revert"), ci="revert"),
    _proxy("git_proxy", "error", 15, ("fetch", "revert"), ci="fetch"),
    _proxy("git_proxy", "slow", 25, ("fetch", "revert"), ci="revert"),
    Fault("force-push", ("verify", "after"), _rewrite, ci="verify", good_only=("after",)),
    Fault(
        "agent-kill",
        ("apply", "verify", "rollback", "revert"),
        _restart_after(lambda _: None),
        clear=_start,
        hold=1,
        ci="rollback",
    ),
    Fault("state-full", ("apply", "verify", "revert"), _fill, clear=_unfill, hold=10, ci="verify"),
    Fault(
        "journal-corrupt",
        ("verify", "rollback"),
        _restart_after(_corrupt("journal.json")),
        clear=_start,
        ci="rollback",
    ),
    Fault(
        "journal-truncated",
        ("verify", "rollback"),
        _restart_after(_truncate("journal.json")),
        clear=_start,
    ),
    Fault(
        "status-corrupt",
        ("verify", "after"),
        _restart_after(_corrupt("status.json")),
        clear=_start,
        ci="verify",
    ),
    Fault(
        "status-truncated",
        ("verify", "after"),
        _restart_after(_truncate("status.json")),
        clear=_start,
        ci="after",
    ),
    Fault(
        "clock-forward",
        ("verify", "rollback"),
        lambda lab: lab.step_clock("+1h"),
        clear=lambda lab: lab.step_clock("+0"),
        hold=5,
    ),
    Fault(
        "clock-back",
        ("verify", "rollback"),
        lambda lab: lab.step_clock("-1h"),
        clear=lambda lab: lab.step_clock("+0"),
        hold=5,
        ci="rollback",
    ),
    Fault(
        "stack-removed",
        ("apply", "verify", "after"),
        _docker("stack", "rm", "{stack}"),
        ci="verify",
    ),
    Fault(
        "service-removed", ("verify", "after"), _docker("service", "rm", "{stack}_web"), ci="after"
    ),
    Fault(
        "service-scaled",
        ("verify", "after"),
        _docker("service", "scale", "-d", "{stack}_api=4"),
        ci="verify",
    ),
)


def runs() -> list[Run]:
    """The runs of this session: all of them with ``FAULTS=all``, else one per fault."""
    everything = os.environ.get("FAULTS", "") == "all"
    out: list[Run] = []
    for i, fault in enumerate(CATALOGUE):
        phases = fault.phases if everything else (fault.ci_phase,)
        for phase in phases:
            if phase in BAD_ONLY:
                kinds = [False]
            elif phase in fault.good_only:
                kinds = [True]
            elif everything:
                kinds = [True, False]
            else:
                kinds = [i % 2 == 0]
            hold = fault.hold if everything else min(fault.hold, CI_HOLD)
            out += [Run(fault, phase, good, hold) for good in kinds]
    return out
