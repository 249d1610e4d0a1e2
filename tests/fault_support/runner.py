"""One run: push a release, inject the fault where the run says, undo it, wait until the agent
has settled, and check the invariants."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fault_support.faults import BEFORE, Run
from fault_support.invariants import TALLY, check, reverted
from fault_support.lab import Lab
from reconciler_support.e2e import wait_for

SETTLE_TIMEOUT = 240.0


def execute(lab: Lab, run: Run) -> list[str]:
    """The invariant violations of one run (also added to the suite's tally)."""
    wait_for("the agent to be settled before the run", lab.settled, SETTLE_TIMEOUT, 0.5)
    started = time.monotonic()
    before = reverted(lab)
    fault = run.fault
    if run.phase in BEFORE:
        fault.inject(lab)
        release = lab.release(run.good)
    else:
        release = lab.release(run.good)
        if run.phase == "after":
            wait_for("the release to settle", lab.settled, SETTLE_TIMEOUT, 0.5)
        else:
            lab.wait_phase(run.phase)
        fault.inject(lab)
    time.sleep(run.hold)
    fault.clear(lab)
    cleared = datetime.now(UTC)
    problems: list[str] = []
    try:
        wait_for(
            "the agent to settle after the fault",
            lambda: lab.passed_since(cleared) and lab.settled(),
            SETTLE_TIMEOUT,
            0.5,
        )
    except AssertionError as exc:
        problems.append(str(exc))
    found, wrongful = check(lab, release, before)
    problems += found
    lab.settled_on(release)
    TALLY.add(run.id, fault.name, problems, wrongful, time.monotonic() - started)
    return problems
