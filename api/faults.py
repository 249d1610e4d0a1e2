"""``API_FAULT``: the faults a test build of the API shows on purpose, parsed from one string.

Progressive delivery is tested with images that fail in each way a canary analysis must catch.
The value is a comma-separated list of modes, which combine:

- ``version=X``: ``/version`` reports ``X`` (``api_build_info`` keeps the real version);
- ``errors=/prefix``: every request whose path starts with ``/prefix`` answers 500 (repeatable);
- ``slow=N``: every request takes about ``N`` times as long (``N`` > 1);
- ``crash-after=20s``: the process exits non-zero that long after it started serving
  (``500ms``, ``20s``, ``2m`` or a bare number of seconds).

Empty means no fault. ``parse_fault`` is pure: it raises ``ValueError`` naming what is wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MAX_SLOWDOWN = 100.0
MODES = "version=X, errors=/prefix, slow=N or crash-after=Ns"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


@dataclass(frozen=True)
class Fault:
    """What to get wrong on purpose; the default gets nothing wrong."""

    version: str | None = None
    error_prefixes: tuple[str, ...] = ()
    slowdown: float = 1.0
    crash_after: float | None = None  # seconds

    @property
    def active(self) -> bool:
        return self != Fault()

    def describe(self) -> str:
        """The modes in ``API_FAULT`` syntax, for the start-up warning."""
        parts = []
        if self.version is not None:
            parts.append(f"version={self.version}")
        parts += [f"errors={prefix}" for prefix in self.error_prefixes]
        if self.slowdown != 1.0:
            parts.append(f"slow={self.slowdown:g}")
        if self.crash_after is not None:
            parts.append(f"crash-after={self.crash_after:g}s")
        return ",".join(parts) or "none"


def parse_fault(raw: str) -> Fault:
    """The ``Fault`` that ``raw`` describes; ``ValueError`` for anything malformed."""
    if not raw.strip():
        return Fault()
    version: str | None = None
    prefixes: list[str] = []
    slowdown = 1.0
    crash_after: float | None = None
    seen: set[str] = set()
    for item in raw.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not value:
            raise ValueError(f"{item.strip()!r} is not a mode; expected {MODES}")
        if key in seen and key != "errors":
            raise ValueError(f"{key} is given twice")
        seen.add(key)
        if key == "version":
            version = value
        elif key == "errors":
            prefixes.append(_prefix(value))
        elif key == "slow":
            slowdown = _slowdown(value)
        elif key == "crash-after":
            crash_after = _duration(value)
        else:
            raise ValueError(f"unknown mode {key!r}; expected {MODES}")
    return Fault(version, tuple(prefixes), slowdown, crash_after)


def _prefix(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"errors={value}: the path prefix must start with /")
    return value


def _slowdown(value: str) -> float:
    try:
        factor = float(value)
    except ValueError:
        raise ValueError(f"slow={value}: not a number") from None
    if not (math.isfinite(factor) and 1.0 < factor <= MAX_SLOWDOWN):
        raise ValueError(f"slow={value}: the factor must be above 1 and at most {MAX_SLOWDOWN:g}")
    return factor


def _duration(value: str) -> float:
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(f"crash-after={value}: not a duration such as 500ms, 20s or 2m")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"crash-after={value}: the duration must be above 0")
    return seconds
