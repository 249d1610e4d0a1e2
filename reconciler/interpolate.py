"""Compose-style variable interpolation (pure).

Supports ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``,
``${VAR?error}``, ``${VAR:+alternative}``, ``${VAR+alternative}`` and ``$$`` for a literal ``$``,
in every string value (not in keys), like ``docker stack deploy`` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PATTERN = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[_a-zA-Z][_a-zA-Z0-9]*)|\{(?P<braced>[^}]*)\}|(?P<invalid>))"
)
_BRACED = re.compile(
    r"^(?P<name>[_a-zA-Z][_a-zA-Z0-9]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.DOTALL
)


class InterpolationError(ValueError):
    pass


def interpolate_string(text: str, variables: Mapping[str, str], where: str = "") -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escaped") is not None:
            return "$"
        name = match.group("named")
        if name is not None:
            return _lookup(name, None, None, variables, where)
        braced = match.group("braced")
        if braced is not None:
            spec = _BRACED.match(braced)
            if not spec:
                raise InterpolationError(f"{where}: invalid interpolation ${{{braced}}}")
            return _lookup(
                spec.group("name"), spec.group("op"), spec.group("arg"), variables, where
            )
        raise InterpolationError(f"{where}: a lone '$' (write '$$' for a literal dollar sign)")

    return _PATTERN.sub(replace, text)


def _lookup(
    name: str, op: str | None, arg: str | None, variables: Mapping[str, str], where: str
) -> str:
    value = variables.get(name)
    empty = value is None or value == ""
    if op is None:
        if value is None:
            raise InterpolationError(f"{where}: variable {name} is not set and has no default")
        return value
    assert arg is not None
    if op == ":-":
        return arg if empty else str(value)
    if op == "-":
        return arg if value is None else value
    if op in (":?", "?"):
        missing = empty if op == ":?" else value is None
        if missing:
            raise InterpolationError(f"{where}: required variable {name}: {arg or 'not set'}")
        return str(value)
    if op == ":+":
        return "" if empty else arg
    return "" if value is None else arg  # "+"


def interpolate(value: Any, variables: Mapping[str, str], path: str = "") -> Any:
    """Interpolate every string inside a decoded YAML document; returns a new document."""
    if isinstance(value, str):
        return interpolate_string(value, variables, path or "value")
    if isinstance(value, dict):
        return {
            k: interpolate(v, variables, f"{path}.{k}" if path else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [interpolate(v, variables, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def escape_dollars(value: Any) -> Any:
    """The inverse for output: a rendered document is interpolated again by ``docker stack
    deploy``, so every literal ``$`` must be written as ``$$``."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_dollars(v) for v in value]
    return value


def parse_env_file(text: str, where: str) -> dict[str, str]:
    """``KEY=value`` lines (``#`` comments, blank lines, optional quotes, ``export`` prefix)."""
    result: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, val = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[_a-zA-Z][_a-zA-Z0-9.-]*", key):
            raise InterpolationError(f"{where}:{lineno}: expected KEY=value, got {raw!r}")
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
            val = val[1:-1]
        result[key] = val
    return result
