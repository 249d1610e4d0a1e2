"""Faults that are nobody's fault in the revision, injected at points of a pass on the real
Swarm, git remote and registry; after each the agent must settle with every invariant holding
(``fault_support.invariants``). ``FAULTS=all`` (``scripts/faults.sh``) runs the whole matrix."""

from __future__ import annotations

import pytest
from fault_support.faults import Run, runs
from fault_support.lab import Lab
from fault_support.runner import execute

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize("run", runs(), ids=lambda r: r.id)
def test_fault(lab: Lab, run: Run) -> None:
    problems = execute(lab, run)
    assert not problems, "\n".join(problems)
