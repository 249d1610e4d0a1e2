"""Health-check declarations and the pure rules of an HTTP check: parse ``driftless.health.*``
labels, match a status code, find the expected version in a response body."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from reconciler.imageref import parse_image
from reconciler.models import HealthCheck
from reconciler.units import parse_duration

LABEL_PREFIX = "driftless.health."
KNOWN_LABELS = frozenset(
    LABEL_PREFIX + k
    for k in ("url", "status", "expect-version", "timeout", "soak", "interval", "network")
)
_T = TypeVar("_T")


def parse_status_spec(spec: str) -> tuple[int, ...]:
    """``"200"``, ``"200,204"``, ``"2xx"``, ``"200-299"`` → the accepted codes."""
    codes: set[int] = set()
    for raw in str(spec).split(","):
        part = raw.strip().lower()
        if re.fullmatch(r"[1-5]xx", part):
            base = int(part[0]) * 100
            codes.update(range(base, base + 100))
        elif re.fullmatch(r"\d{3}-\d{3}", part):
            lo, hi = (int(x) for x in part.split("-"))
            if lo > hi:
                raise ValueError(f"empty status range {part!r}")
            codes.update(range(lo, hi + 1))
        elif re.fullmatch(r"\d{3}", part):
            codes.add(int(part))
        else:
            raise ValueError(f"not a status code list: {spec!r} (e.g. 200, 200,204, 2xx, 200-299)")
    if not codes or min(codes) < 100 or max(codes) > 599:
        raise ValueError(f"status codes must be between 100 and 599: {spec!r}")
    return tuple(sorted(codes))


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url


def expand_version(template: str, image: str) -> str:
    """``{tag}`` → the image's tag, ``{image}`` → the whole reference."""
    ref = parse_image(image)
    return template.replace("{tag}", ref.tag or "latest").replace("{image}", image)


class _HealthLabels:
    """One service's ``driftless.health.*`` labels, read with the problems they have."""

    def __init__(self, service: str, labels: Mapping[str, str]) -> None:
        self.service = service
        self.labels = labels
        self.problems: list[str] = []

    def fail(self, message: str) -> None:
        self.problems.append(f"service {self.service}: {message}")

    def get(self, name: str) -> str | None:
        return self.labels.get(LABEL_PREFIX + name)

    def parsed(self, name: str, parse: Callable[[str], _T], default: _T) -> _T:
        """The label parsed, or ``default`` when it is absent or invalid (a problem)."""
        raw = self.get(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            self.fail(f"label {LABEL_PREFIX}{name}: {exc}")
            return default

    def network(self, resolve_network: Mapping[str, str]) -> str | None:
        key = self.get("network")
        if key is None:
            return None
        network = resolve_network.get(key)
        if network is None:
            self.fail(f"label {LABEL_PREFIX}network: {key!r} is not a network of this stack")
        return network

    def expect_version(self, image: str) -> str | None:
        expect = self.get("expect-version")
        if expect is None:
            return None
        try:
            expect = expand_version(expect, image)
        except ValueError as exc:
            self.fail(f"{LABEL_PREFIX}expect-version: {exc}")
        if not expect or not expect.strip():
            self.fail(f"{LABEL_PREFIX}expect-version is empty")
        return expect

    def positive(self, name: str, value: float) -> None:
        if value <= 0:
            self.fail(f"{LABEL_PREFIX}{name} must be positive")


def health_from_labels(
    service: str,
    labels: Mapping[str, str],
    image: str,
    *,
    default_timeout: float,
    default_interval: float,
    resolve_network: Mapping[str, str],
) -> tuple[HealthCheck | None, list[str]]:
    """The service's HTTP check from its deploy labels, and the problems found (refusal reasons).
    ``resolve_network`` maps the stack's network keys to their Swarm names."""
    ours = {k: str(v) for k, v in labels.items() if k.startswith(LABEL_PREFIX)}
    read = _HealthLabels(service, ours)
    for key in sorted(set(ours) - KNOWN_LABELS):
        read.fail(f"unknown label {key} (known: {', '.join(sorted(KNOWN_LABELS))})")
    url = read.get("url")
    if url is None:
        others = sorted(set(ours) & KNOWN_LABELS)
        if others:
            read.fail(f"{', '.join(others)} given without {LABEL_PREFIX}url")
        return None, read.problems
    url_ok = read.parsed("url", _check_url, None)
    status: tuple[int, ...] = read.parsed("status", parse_status_spec, (200,))
    timeout = read.parsed("timeout", parse_duration, default_timeout)
    soak = read.parsed("soak", parse_duration, 0.0)
    interval = read.parsed("interval", parse_duration, default_interval)
    network = read.network(resolve_network)
    expect = read.expect_version(image)
    read.positive("interval", interval)
    read.positive("timeout", timeout)
    if read.problems or url_ok is None:
        return None, read.problems
    check = HealthCheck(
        name=service,
        url=url,
        expect_status=status,
        expect_version=expect,
        timeout=timeout,
        soak=soak,
        interval=interval,
        network=network,
        service=service,
    )
    return check, read.problems


def version_served(body: str, expected: str) -> bool:
    """True when the response reports ``expected``: in a JSON object, a top-level value equal
    to it; otherwise the string as a whole word of the body."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return any(str(v) == expected for v in data.values() if not isinstance(v, dict | list))
    pattern = rf"(?<![\w.\-]){re.escape(expected)}(?![\w.\-])"
    return re.search(pattern, body) is not None


@dataclass(frozen=True)
class Judged:
    ok: bool
    output: str
    #: a failure no retry can mend: the task answers, and with another version than expected
    definitive: bool = False


def judge_answer(check: HealthCheck, status: int, body: str) -> Judged:
    """One answer to an HTTP check: whether it passes, and what to say about it."""
    if status not in check.expect_status:
        return Judged(False, f"HTTP {status}: {excerpt(body)}")
    if check.expect_version and not version_served(body, check.expect_version):
        version = check.expect_version
        return Judged(
            False, f"HTTP {status} but version {version} is not served: {excerpt(body)}", True
        )
    return Judged(True, f"HTTP {status}: {excerpt(body, 200)}")


def excerpt(text: str, limit: int = 500) -> str:
    """A short, single-paragraph excerpt of a response body for messages and commits."""
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "…"
