"""Durations, byte sizes and CPU counts in the units compose files and Swarm use (pure)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_NS = {
    "ns": Decimal(1),
    "us": Decimal(1_000),
    "µs": Decimal(1_000),
    "ms": Decimal(1_000_000),
    "s": Decimal(1_000_000_000),
    "m": Decimal(60_000_000_000),
    "h": Decimal(3_600_000_000_000),
}


def parse_duration_ns(value: str | int | float) -> int:
    """Go ``time.ParseDuration`` syntax (``1m30s``, ``500ms``) → nanoseconds. A bare number is
    seconds. Raises ``ValueError`` with a readable message."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        _refuse_negative(value, value)
        return int(Decimal(str(value)) * _NS["s"])
    text = str(value).strip()
    if not text:
        raise ValueError("empty duration")
    seconds = _decimal(text)
    if seconds is not None:
        _refuse_negative(seconds, value)
        return int(seconds * _NS["s"])
    return _go_duration_ns(text, value)


def _refuse_negative(amount: Decimal | int | float, value: str | int | float) -> None:
    if amount < 0:
        raise ValueError(f"negative duration: {value!r}")


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _go_duration_ns(text: str, value: str | int | float) -> int:
    """``1m30s`` → nanoseconds: number-unit parts, one after the other, nothing else."""
    pos, total = 0, Decimal(0)
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += Decimal(match.group(1)) * _NS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 10s, 1m30s, 2h)")
    return int(total)


def parse_duration(value: str | int | float) -> float:
    """Like :func:`parse_duration_ns` but in seconds."""
    return parse_duration_ns(value) / 1e9


def format_duration_ns(ns: int) -> str:
    """Nanoseconds → the shortest Go-style string (``90000000000`` → ``1m30s``)."""
    if ns == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3_600_000_000_000), ("m", 60_000_000_000)):
        if ns >= size:
            parts.append(f"{ns // size}{unit}")
            ns %= size
    if ns:
        if ns % 1_000_000_000 == 0:
            parts.append(f"{ns // 1_000_000_000}s")
        elif ns % 1_000_000 == 0 and ns < 1_000_000_000:
            parts.append(f"{ns // 1_000_000}ms")
        else:
            parts.append(f"{Decimal(ns) / Decimal(1_000_000_000):f}s")
    return "".join(parts)


_BYTES = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_BYTE_UNITS = {None: 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_bytes(value: str | int) -> int:
    """Docker's ``RAMInBytes``: ``64M``, ``64MiB``, ``1.5g``, ``512`` → bytes (1024-based)."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    match = _BYTES.match(str(value).strip())
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 512M, 1G)")
    unit = match.group(2).lower() if match.group(2) else None
    return int(Decimal(match.group(1)) * _BYTE_UNITS[unit])


def parse_nano_cpus(value: str | int | float) -> int:
    """``cpus: "0.5"`` → ``NanoCPUs`` 500000000."""
    try:
        cpus = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not a CPU count: {value!r}") from exc
    if cpus < 0:
        raise ValueError(f"negative CPU count: {value!r}")
    return int(cpus * 1_000_000_000)
