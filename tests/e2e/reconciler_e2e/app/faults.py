"""``APP_FAULT``: faults a test build shows on purpose; the modes of the API's ``API_FAULT``.

A comma-separated list of modes, which combine:

- ``version=X``: ``/version`` reports ``X`` (``app_build_info`` keeps the real version);
- ``errors=/prefix``: every request whose path starts with ``/prefix`` answers 500 (repeatable);
- ``slow=N``: every request takes about ``N`` times as long (``N`` > 1);
- ``crash-after=20s``: the process exits non-zero that long after it started serving
  (``500ms``, ``20s``, ``2m`` or a bare number of seconds).

Standard library only: the image has no pip. ``parse_fault`` raises ``ValueError`` saying what is
wrong with a malformed value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MODES = "version=X, errors=/prefix, slow=N or crash-after=Ns"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


@dataclass(frozen=True)
class Fault:
    version: str | None = None
    error_prefixes: tuple[str, ...] = ()
    slowdown: float = 1.0
    crash_after: float | None = None  # seconds

    def fails(self, path: str) -> str | None:
        """The prefix that makes ``path`` fail, if any."""
        return next((p for p in self.error_prefixes if path.startswith(p)), None)


def parse_fault(raw: str) -> Fault:
    if not raw.strip():
        return Fault()
    values: dict[str, str] = {}
    prefixes: list[str] = []
    for item in raw.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not value:
            raise ValueError(f"{item.strip()!r} is not a mode; expected {MODES}")
        if key == "errors":
            if not value.startswith("/"):
                raise ValueError(f"errors={value}: the path prefix must start with /")
            prefixes.append(value)
        elif key not in ("version", "slow", "crash-after"):
            raise ValueError(f"unknown mode {key!r}; expected {MODES}")
        elif key in values:
            raise ValueError(f"{key} is given twice")
        else:
            values[key] = value
    slow = values.get("slow")
    crash = values.get("crash-after")
    return Fault(
        version=values.get("version"),
        error_prefixes=tuple(prefixes),
        slowdown=1.0 if slow is None else _slowdown(slow),
        crash_after=None if crash is None else _duration(crash),
    )


def _slowdown(value: str) -> float:
    try:
        factor = float(value)
    except ValueError:
        raise ValueError(f"slow={value}: not a number") from None
    if not (math.isfinite(factor) and 1.0 < factor <= 100.0):
        raise ValueError(f"slow={value}: the factor must be above 1 and at most 100")
    return factor


def _duration(value: str) -> float:
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(f"crash-after={value}: not a duration such as 500ms, 20s or 2m")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"crash-after={value}: the duration must be above 0")
    return seconds
