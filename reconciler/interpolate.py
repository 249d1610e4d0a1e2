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


# Like docker's compose loader: after interpolation, strings at these paths become numbers or
# booleans (``published: "${HTTP_PORT:-80}"`` is the integer 80). ``*`` = any key or list item.
_CASTS: dict[tuple[str, ...], str] = {
    ("services", "*", "configs", "*", "mode"): "int",
    ("services", "*", "secrets", "*", "mode"): "int",
    ("services", "*", "healthcheck", "retries"): "int",
    ("services", "*", "healthcheck", "disable"): "bool",
    ("services", "*", "deploy", "replicas"): "int",
    ("services", "*", "deploy", "update_config", "parallelism"): "int",
    ("services", "*", "deploy", "update_config", "max_failure_ratio"): "float",
    ("services", "*", "deploy", "rollback_config", "parallelism"): "int",
    ("services", "*", "deploy", "rollback_config", "max_failure_ratio"): "float",
    ("services", "*", "deploy", "restart_policy", "max_attempts"): "int",
    ("services", "*", "ports", "*", "target"): "int",
    ("services", "*", "ports", "*", "published"): "int",
    ("services", "*", "ulimits", "*"): "int",
    ("services", "*", "ulimits", "*", "hard"): "int",
    ("services", "*", "ulimits", "*", "soft"): "int",
    ("services", "*", "privileged"): "bool",
    ("services", "*", "read_only"): "bool",
    ("services", "*", "stdin_open"): "bool",
    ("services", "*", "tty"): "bool",
    ("services", "*", "volumes", "*", "read_only"): "bool",
    ("services", "*", "volumes", "*", "volume", "nocopy"): "bool",
    ("networks", "*", "external"): "bool",
    ("networks", "*", "internal"): "bool",
    ("networks", "*", "attachable"): "bool",
    ("volumes", "*", "external"): "bool",
    ("secrets", "*", "external"): "bool",
    ("configs", "*", "external"): "bool",
}


def _cast(kind: str, value: str, where: str) -> Any:
    text = value.strip()
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        raise InterpolationError(f"{where}: {value!r} is not a number") from None
    low = text.lower()
    if low in ("true", "yes", "y", "on", "1"):
        return True
    if low in ("false", "no", "n", "off", "0"):
        return False
    raise InterpolationError(f"{where}: {value!r} is not true or false")


def cast_types(doc: Any, problems: list[str], path: tuple[str, ...] = ()) -> Any:
    """Apply docker's type casts to a document after interpolation (returns a new document);
    values that cannot be cast are left as they are and reported in ``problems``."""
    if isinstance(doc, dict):
        return {k: cast_types(v, problems, (*path, str(k))) for k, v in doc.items()}
    if isinstance(doc, list):
        return [cast_types(v, problems, (*path, "*")) for v in doc]
    if isinstance(doc, str):
        for pattern, kind in _CASTS.items():
            if len(pattern) == len(path) and all(
                p in ("*", q) for p, q in zip(pattern, path, strict=True)
            ):
                try:
                    return _cast(kind, doc, ".".join(path))
                except InterpolationError as exc:
                    problems.append(str(exc))
                    return doc
    return doc
