"""The fault-injection suite's lab (one per session: one stack, one agent, one remote) and the
summary line it prints at the end (also written to .cache/artifacts/faults.json)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_support.invariants import TALLY
from fault_support.lab import Lab, open_lab
from reconciler_support.e2e import build_images


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory, registry: str, base_image: str) -> Iterator[Lab]:
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    images = build_images(registry, base_image, prefix)
    root = tmp_path_factory.mktemp("faults")
    the_lab = open_lab(root, f"{prefix}faults", prefix, images, base_image)
    try:
        yield the_lab
    finally:
        the_lab.close()
        log = root / "agent.log"
        if log.exists():
            print(log.read_text()[-8000:])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.runs:
        return
    terminalreporter.write_sep("=", TALLY.line())
    for line in TALLY.failed_runs:
        terminalreporter.write_line(f"  {line}")
    out = Path(__file__).resolve().parents[2] / ".cache" / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    TALLY.write(out / "faults.json")
