"""Dataclasses ⇄ JSON-able values, for the status file, the JSON API and events.

``to_jsonable`` turns a (nested) frozen dataclass into plain dicts/lists/str/int/float/bool/None:
datetimes become ISO 8601 strings in UTC, enums their values, tuples lists; a field kept out of
``repr`` (``field(repr=False)``: secret values) is kept out of JSON too. ``from_jsonable`` is the
inverse, driven by the dataclass's type hints.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar, cast

T = TypeVar("T")


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def from_jsonable(cls: type[T], data: Any) -> T:
    """Build ``cls`` (a dataclass) from what :func:`to_jsonable` produced. Unknown keys are
    ignored and missing keys take their defaults, so older status files still load."""
    return cast(T, _convert(cls, data))


def _convert(tp: Any, data: Any) -> Any:
    if tp is Any:
        return data
    if tp in (dict, Mapping):
        return _convert_mapping(tp, data)
    generic = _GENERICS.get(typing.get_origin(tp))
    if generic is not None:
        return generic(tp, data)
    if isinstance(tp, type):
        return _convert_class(tp, data)
    return data


def _convert_union(tp: Any, data: Any) -> Any:
    """The first member of the union that takes ``data`` (``None`` for an optional)."""
    args = typing.get_args(tp)
    if data is None and type(None) in args:
        return None
    last_error: Exception | None = None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(arg, data)
        except (TypeError, ValueError, KeyError) as exc:
            last_error = exc
    raise TypeError(f"cannot convert {data!r} to {tp}") from last_error


def _convert_tuple(tp: Any, data: Any) -> tuple[Any, ...]:
    args = typing.get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(args[0], item) for item in data)
    return tuple(_convert(a, item) for a, item in zip(args, data, strict=True))


def _convert_mapping(tp: Any, data: Any) -> dict[str, Any]:
    args = typing.get_args(tp)
    vt = args[1] if len(args) == 2 else Any
    return {str(k): _convert(vt, v) for k, v in dict(data).items()}


def _convert_list(tp: Any, data: Any) -> list[Any]:
    (arg,) = typing.get_args(tp)
    return [_convert(arg, item) for item in data]


#: generic types by their origin (``tuple[int, ...]`` → ``tuple``)
_GENERICS: dict[Any, Callable[[Any, Any], Any]] = {
    typing.Union: _convert_union,
    types.UnionType: _convert_union,
    tuple: _convert_tuple,
    dict: _convert_mapping,
    Mapping: _convert_mapping,
    list: _convert_list,
}


def _convert_class(tp: type, data: Any) -> Any:
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, data)
    if issubclass(tp, Enum):
        return tp(data)
    if tp is datetime:
        return data if isinstance(data, datetime) else parse_time(str(data))
    if tp is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if tp in (str, int, bool) and not isinstance(data, tp):
        raise TypeError(f"expected {tp.__name__}, got {data!r}")
    return data


def _convert_dataclass(tp: type, data: Any) -> Any:
    if not isinstance(data, Mapping):
        raise TypeError(f"{tp.__name__} expects an object, got {data!r}")
    hints = typing.get_type_hints(tp)
    kwargs = {
        f.name: _convert(hints[f.name], data[f.name])
        for f in dataclasses.fields(tp)
        if f.name in data and f.init
    }
    return tp(**kwargs)
