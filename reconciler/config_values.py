"""Configuration values from what a YAML file or the environment gives: each value cast to its
key's type (durations like ``90s``, booleans like ``yes``, mappings and check lists given as JSON
in an environment variable), an unknown key named with the closest known one. ``ConfigError``
names the key."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from difflib import get_close_matches
from enum import StrEnum
from pathlib import Path
from typing import Any

from reconciler import cron
from reconciler.checks import parse_status_spec
from reconciler.errors import ConfigError
from reconciler.models import HealthCheck
from reconciler.units import parse_duration
from reconciler.windows import SyncWindow, WindowKind

_DURATION_KEYS = {
    "timeout",
    "interval",
    "jitter",
    "retry_interval",
    "apply",
    "verify",
    "rollback",
    "notify",
    "request_timeout",
    "refresh",
    "stuck_after",
    "dedup_window",
    "backoff",
    "max_backoff",
    "lease_duration",
}


def build(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key)
        dotted = f"{where}.{key}" if where else key
        if key not in names:
            close = get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"unknown config key {dotted}{hint}")
        kwargs[key] = _coerce(hints[key], value, dotted)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return None if value in (None, "") else _coerce(inner[0], value, where)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where)  # type: ignore[arg-type]
    try:
        if origin is dict or (origin is tuple and args and args[0] in _ITEMS):
            value = json.loads(value) if isinstance(value, str) else value
            return _coerce_collection(origin, args[0] if args else None, value, where)
        return _coerce_scalar(tp, value, where)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"config {where}: invalid value {value!r}: {exc}") from exc


def _coerce_collection(origin: type, item_type: Any, value: Any, where: str) -> Any:
    """A mapping of strings, or a tuple of checks or sync windows (each may come as JSON text)."""
    if origin is tuple:
        value = [] if value is None else value
        if not isinstance(value, list | tuple):
            raise ValueError("expected a list")
        make = _ITEMS[item_type]
        return tuple(make(item, f"{where}[{i}]") for i, item in enumerate(value))
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping")
    return {str(k): str(v) for k, v in value.items()}


def _coerce_scalar(tp: Any, value: Any, where: str) -> Any:
    if tp is bool:
        return _bool(value)
    if tp is float:
        key = where.rsplit(".", 1)[-1]
        return parse_duration(value) if key in _DURATION_KEYS else float(value)
    if tp is int:
        if isinstance(value, bool):
            raise ValueError(value)
        return int(value)
    if tp is Path:
        return Path(str(value)).expanduser()
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        return _choice(tp, value)
    if tp is str:
        if isinstance(value, dict | list):
            raise ValueError("expected a string")
        return "" if value is None else str(value)
    raise ConfigError(f"config {where}: unsupported type {tp}")  # pragma: no cover


def _choice(tp: type[StrEnum], value: Any) -> StrEnum:
    """One of an enumeration's values (YAML reads a bare ``off`` as false)."""
    text = "off" if value is False else str(value).strip().lower()
    try:
        return tp(text)
    except ValueError:
        raise ValueError(f"expected one of {', '.join(m.value for m in tp)}") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _check(item: Any, where: str) -> HealthCheck:
    if not isinstance(item, Mapping) or "url" not in item:
        raise ConfigError(f"config {where}: a check needs at least name and url")
    known = {"name", "url", "status", "expect_version", "timeout", "soak", "interval", "network"}
    unknown = set(item) - known
    if unknown:
        raise ConfigError(f"config {where}: unknown keys {sorted(unknown)}")
    try:
        return HealthCheck(
            name=str(item.get("name") or item["url"]),
            url=str(item["url"]),
            expect_status=parse_status_spec(str(item.get("status", "200"))),
            expect_version=str(item["expect_version"]) if item.get("expect_version") else None,
            timeout=parse_duration(item.get("timeout", 60)),
            soak=parse_duration(item.get("soak", 0)),
            interval=parse_duration(item.get("interval", 2)),
            network=str(item["network"]) if item.get("network") else None,
        )
    except ValueError as exc:
        raise ConfigError(f"config {where}: {exc}") from exc


def _window(item: Any, where: str) -> SyncWindow:
    """One of ``sync.windows``: kind, schedule (cron, 5 fields), duration, time_zone, reason."""
    if not isinstance(item, Mapping):
        raise ConfigError(f"config {where}: a window is a mapping of kind, schedule and duration")
    known = {"kind", "schedule", "duration", "time_zone", "reason"}
    unknown = set(item) - known
    if unknown:
        raise ConfigError(
            f"config {where}: unknown keys {sorted(unknown)} (known: {sorted(known)})"
        )
    for key in ("kind", "schedule", "duration"):
        if item.get(key) in (None, ""):
            raise ConfigError(f"config {where}.{key}: missing")
    kind = str(item["kind"]).strip().lower()
    if kind not in tuple(WindowKind):
        raise ConfigError(f"config {where}.kind: {item['kind']!r} is not allow or deny")
    time_zone = str(item.get("time_zone") or "UTC").strip()
    try:
        cron.zone(time_zone)
    except ValueError as exc:
        raise ConfigError(f"config {where}.time_zone: {exc}") from exc
    try:
        schedule = cron.parse(str(item["schedule"]), time_zone)
    except ValueError as exc:
        raise ConfigError(f"config {where}.schedule: {exc}") from exc
    try:
        duration = parse_duration(item["duration"])
    except ValueError as exc:
        raise ConfigError(f"config {where}.duration: {exc}") from exc
    if duration <= 0:
        raise ConfigError(f"config {where}.duration: must be longer than 0s")
    reason = str(item.get("reason") or "").strip()
    return SyncWindow(WindowKind(kind), schedule, duration, time_zone, reason)


#: the lists a key may hold, and how each item is read
_ITEMS: dict[Any, Any] = {HealthCheck: _check, SyncWindow: _window}
