"""Canary analysis: PromQL queries measured while a release's canary is held, and their verdict
(pure; modelled on Argo Rollouts' AnalysisTemplate and Flagger's metric checks).

* A :class:`Condition` is ``result <op> <number>`` (``<``, ``<=``, ``>``, ``>=``, ``==``): only
  ``result``, one comparison, a finite number.
* Queries name the release with placeholders: ``{tag}`` (the new image's tag), ``{stable_tag}``
  (the tag it replaces), ``{service}``, ``{stack}``. A placeholder is a name in braces and nothing
  else; PromQL's own braces always hold label matchers (``{job="api"}``: an operator and a
  quoted value) or regex repetitions (``{2,3}``), so they never look like one, and ``\\p{Greek}``
  (a Unicode class in a regex) is not one either. There is no escape: PromQL has no ``{name}``.
* Each measurement is ``successful`` (a number for which the condition holds), ``failed`` (a
  number for which it does not) or ``inconclusive`` (no number: an empty result, NaN, several
  series, Prometheus unreachable). Inconclusive is never a pass. ``±Inf`` is a number (``x / 0``
  with ``x > 0``) and is compared as one.
* An :class:`AnalysisRun` is **failed** as soon as it has more failed measurements than
  ``failure_limit`` (the canary measured bad: abort at once), and **inconclusive** as soon as it
  has more inconclusive ones than ``inconclusive_limit`` when one is set (the canary could not be
  judged: no point waiting). At the end of the analysis window it **passed** with at least one
  successful measurement (and no more failures than allowed); with none it is inconclusive.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from reconciler.units import parse_duration

#: the placeholders a query may use
PLACEHOLDERS = frozenset({"tag", "stable_tag", "service", "stack"})
DEFAULT_INTERVAL = 5.0

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_CONDITION = re.compile(rf"\s*result\s*(<=|>=|==|<|>)\s*({_NUMBER})\s*")
#: ``{name}``, not preceded by ``\p`` / ``\P`` (a regex's Unicode class, ``\p{Greek}``)
_PLACEHOLDER = re.compile(r"(?<!\\[pP])\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: what may not be put into a PromQL string literal by a placeholder
_UNSAFE_VALUE = re.compile(r"[\"'`\\\s{}]")


@dataclass(frozen=True)
class Condition:
    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        """Whether ``value`` passes (NaN never does)."""
        return not math.isnan(value) and _OPS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"result {self.op} {_number(self.threshold)}"


def parse_condition(text: str) -> Condition:
    """``result < 0.05`` → :class:`Condition`; ``ValueError`` naming the text otherwise."""
    match = _CONDITION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"not a success condition: {text!r} (use result <, <=, >, >= or == a number, "
            "e.g. 'result < 0.05')"
        )
    threshold = float(match.group(2))
    if not math.isfinite(threshold):
        raise ValueError(f"not a success condition: {text!r} (the number is out of range)")
    return Condition(match.group(1), threshold)


def _number(value: float) -> str:
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def placeholders(query: str) -> set[str]:
    """The names of the placeholders ``query`` uses (known or not)."""
    return set(_PLACEHOLDER.findall(query))


def expand(query: str, values: Mapping[str, str]) -> str:
    """``query`` with each placeholder replaced by its value. ``ValueError`` for a placeholder
    without a value, or a value that cannot go into a PromQL string (quotes, backslashes, blanks,
    braces: image tags and names never have them)."""
    used = placeholders(query)
    missing = sorted(used - set(values))
    if missing:
        raise ValueError(f"no value for {', '.join('{' + m + '}' for m in missing)} in {query!r}")
    unsafe = sorted(k for k in used if _UNSAFE_VALUE.search(values[k]) or not values[k])
    if unsafe:
        raise ValueError(f"cannot put {', '.join(f'{k}={values[k]!r}' for k in unsafe)} in a query")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], query)


@dataclass(frozen=True)
class AnalysisSpec:
    name: str
    query: str
    success: Condition
    interval: float = DEFAULT_INTERVAL  # seconds between measurements
    failure_limit: int = 0  # failed measurements tolerated; one more fails the run
    inconclusive_limit: int | None = None  # None: only the window's end judges them


class Outcome(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


class Verdict(StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Answer:
    """What a metrics source answered for one query: one number, or ``None`` and why."""

    value: float | None
    detail: str
    bad_query: bool = False  # the source refused the query itself (it does not parse)


@dataclass(frozen=True)
class Measurement:
    analysis: str
    value: float | None
    outcome: Outcome
    detail: str
    at: float  # when it was taken (the clock's seconds)


def measure(spec: AnalysisSpec, value: float | None, detail: str, at: float) -> Measurement:
    """One measurement of ``spec``: no value or NaN is inconclusive, else the condition decides."""
    if value is None or math.isnan(value):
        outcome = Outcome.INCONCLUSIVE
    elif spec.success.holds(value):
        outcome = Outcome.SUCCESSFUL
    else:
        outcome = Outcome.FAILED
    return Measurement(spec.name, value, outcome, detail, at)


@dataclass(frozen=True)
class AnalysisRun:
    spec: AnalysisSpec
    measurements: tuple[Measurement, ...] = ()

    def add(self, measurement: Measurement) -> AnalysisRun:
        return replace(self, measurements=(*self.measurements, measurement))

    def count(self, outcome: Outcome) -> int:
        return sum(1 for m in self.measurements if m.outcome is outcome)

    @property
    def failed(self) -> bool:
        """More failed measurements than ``failure_limit``: the canary measured bad."""
        return self.count(Outcome.FAILED) > self.spec.failure_limit

    @property
    def inconclusive(self) -> bool:
        """More inconclusive measurements than ``inconclusive_limit`` (when one is set)."""
        limit = self.spec.inconclusive_limit
        return limit is not None and self.count(Outcome.INCONCLUSIVE) > limit

    def verdict(self, at_window_end: bool) -> Verdict:
        """Failed or inconclusive as soon as a limit is passed (failed first); otherwise running
        until the window's end, then passed with at least one successful measurement."""
        if self.failed:
            return Verdict.FAILED
        if self.inconclusive:
            return Verdict.INCONCLUSIVE
        if not at_window_end:
            return Verdict.RUNNING
        if self.count(Outcome.SUCCESSFUL) == 0:
            return Verdict.INCONCLUSIVE
        return Verdict.PASSED

    def summary(self) -> str:
        """One line for people: ``error-rate: 0.031 (result < 0.05) 4/4 successful``; the value
        is the last measurement's (or why it had none)."""
        spec = self.spec
        if not self.measurements:
            return f"{spec.name}: not measured yet ({spec.success})"
        last = self.measurements[-1]
        value = f"{last.value:.4g}" if last.value is not None else last.detail or "no value"
        counts = f"{self.count(Outcome.SUCCESSFUL)}/{len(self.measurements)} successful"
        failed, inconclusive = self.count(Outcome.FAILED), self.count(Outcome.INCONCLUSIVE)
        if failed:
            counts += f", {failed} failed (limit {spec.failure_limit})"
        if inconclusive:
            counts += f", {inconclusive} inconclusive"
            if spec.inconclusive_limit is not None:
                counts += f" (limit {spec.inconclusive_limit})"
        return f"{spec.name}: {value} ({spec.success}) {counts}"


class AnalysisFileError(ValueError):
    """Every problem of an ``analysis.yaml``, one line each (``str()`` joins them)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


_KEYS = ("name", "query", "success", "interval", "failure_limit", "inconclusive_limit")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def parse_analyses(data: object, services: set[str]) -> dict[str, tuple[AnalysisSpec, ...]]:
    """An environment's ``analysis.yaml`` (a mapping service → list of analyses) → the analyses
    of each service. :class:`AnalysisFileError` (a ``ValueError``) lists every problem."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise AnalysisFileError(
            [f"analysis.yaml: expected a mapping of service → analyses, not {_kind(data)}"]
        )
    problems: list[str] = []
    out: dict[str, tuple[AnalysisSpec, ...]] = {}
    for service, entries in data.items():
        where = f"analysis.yaml: {service}"
        if not isinstance(service, str) or service not in services:
            problems.append(f"{where}: not a service of the stack")
            continue
        if not isinstance(entries, list):
            problems.append(f"{where}: expected a list of analyses, not {_kind(entries)}")
            continue
        specs = [
            _entry(entry, f"{where}: analysis {i + 1}", problems) for i, entry in enumerate(entries)
        ]
        out[service] = tuple(s for s in specs if s is not None)
        _refuse_duplicates(where, entries, problems)
    if problems:
        raise AnalysisFileError(problems)
    return {service: specs for service, specs in out.items() if specs}


def _refuse_duplicates(where: str, entries: list[object], problems: list[str]) -> None:
    names = [e.get("name") for e in entries if isinstance(e, Mapping)]
    for name in sorted({n for n in names if isinstance(n, str) and names.count(n) > 1}):
        problems.append(f"{where}: the name {name!r} is used by {names.count(name)} analyses")


def _entry(entry: object, where: str, problems: list[str]) -> AnalysisSpec | None:
    """One analysis; its problems appended (prefixed with ``where`` and its name)."""
    if not isinstance(entry, Mapping):
        problems.append(f"{where}: expected a mapping, not {_kind(entry)}")
        return None
    name = entry.get("name")
    if isinstance(name, str) and name:
        where = f"{where} ({name})"
    found: list[str] = []
    for key in sorted(str(k) for k in entry if k not in _KEYS):
        found.append(f"unknown key {key!r} (known: {', '.join(_KEYS)})")
    spec = AnalysisSpec(
        name=_name(name, found),
        query=_query(entry.get("query"), found),
        success=_success(entry.get("success"), found),
        interval=_interval(entry.get("interval", DEFAULT_INTERVAL), found),
        failure_limit=_limit("failure_limit", entry.get("failure_limit", 0), found) or 0,
        inconclusive_limit=_limit(
            "inconclusive_limit", entry.get("inconclusive_limit"), found, optional=True
        ),
    )
    problems.extend(f"{where}: {p}" for p in found)
    return None if found else spec


def _name(value: object, problems: list[str]) -> str:
    if value is None:
        problems.append("missing name")
    elif not isinstance(value, str) or not _NAME.fullmatch(value):
        problems.append(f"name {value!r}: use letters, digits, '_', '.' and '-'")
    return value if isinstance(value, str) else ""


def _query(value: object, problems: list[str]) -> str:
    if not isinstance(value, str) or not value.strip():
        problems.append(
            "missing query" if value is None else f"query: not a PromQL text: {value!r}"
        )
        return ""
    unknown = sorted(placeholders(value) - PLACEHOLDERS)
    if unknown:
        known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
        names = ", ".join("{" + u + "}" for u in unknown)
        problems.append(f"query: unknown placeholder {names} (known: {known})")
    return value


def _success(value: object, problems: list[str]) -> Condition:
    if value is None:
        problems.append("missing success (e.g. 'result < 0.05')")
        return Condition("<", 0.0)
    try:
        return parse_condition(value if isinstance(value, str) else repr(value))
    except ValueError as exc:
        problems.append(f"success: {exc}")
        return Condition("<", 0.0)


def _interval(value: object, problems: list[str]) -> float:
    try:
        if not isinstance(value, str | int | float):
            raise ValueError(f"not a duration: {value!r}")
        seconds = parse_duration(value)
    except ValueError as exc:
        problems.append(f"interval: {exc}")
        return DEFAULT_INTERVAL
    if seconds <= 0:
        problems.append(f"interval: {value!r} must be positive")
    return seconds


def _limit(key: str, value: object, problems: list[str], *, optional: bool = False) -> int | None:
    """A count of measurements: a whole number, 0 or more (``None`` allowed when optional)."""
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(f"{key}: {value!r} is not a whole number")
        return None
    if value < 0:
        problems.append(f"{key}: {value} must not be negative")
    return value


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__
