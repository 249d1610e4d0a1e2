"""The test environment's variables (``scripts/testenv.sh up`` writes them to
``.cache/testenv/env``), for the benchmarks that run outside pytest."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

ENV_FILE = Path(__file__).resolve().parents[2] / ".cache" / "testenv" / "env"
REQUIRED = ("TEST_REGISTRY", "TEST_BASE_IMAGE", "TEST_STACK_PREFIX")


def load_testenv(required: tuple[str, ...] = REQUIRED) -> None:
    """Set what the env file exports (the environment wins), or exit naming what is missing."""
    if ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                os.environ.setdefault(key, (shlex.split(value) or [""])[0])
    for key in required:
        if not os.environ.get(key):
            sys.exit(f"{key} is not set: run scripts/testenv.sh up first")
