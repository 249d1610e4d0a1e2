"""How a service rolls out, declared next to it with ``driftless.rollout.*`` deploy labels (pure).

* ``driftless.rollout.canary`` — how many new tasks are the canary: Swarm's rolling update is
  held after them while they are analysed, then completes (``0``: no canary step). Default: ``1``
  for a replicated service of two replicas or more with an HTTP check or analyses, else ``0``.
* ``driftless.rollout.window`` — how long the canary is analysed (default ``30s``).
* ``driftless.rollout.after`` — services (comma-separated) whose rollout must be complete before
  this one starts: the services of a pass roll out in waves, each gated on the one before.

A canary must be fewer than the service's replicas (all of them is no canary), and the ``after``
names must be services of the stack with no cycle among them; anything else refuses the revision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.units import parse_duration

LABEL_PREFIX = "driftless.rollout."
KNOWN_LABELS = frozenset(LABEL_PREFIX + k for k in ("canary", "window", "after"))
DEFAULT_WINDOW = 30.0


@dataclass(frozen=True)
class RolloutSpec:
    canary: int = 0  # new tasks analysed before the rest of the service is updated
    window: float = DEFAULT_WINDOW  # how long they are analysed
    after: tuple[str, ...] = ()  # services whose rollout completes first


def _canary(raw: str | None, default: int, problems: list[str]) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"label {LABEL_PREFIX}canary: {raw!r} is not a number of tasks")
        return default
    if value < 0:
        problems.append(f"label {LABEL_PREFIX}canary must not be negative")
    return max(0, value)


def _window(raw: str | None, problems: list[str]) -> float:
    if raw is None:
        return DEFAULT_WINDOW
    try:
        window = parse_duration(raw)
    except ValueError as exc:
        problems.append(f"label {LABEL_PREFIX}window: {exc}")
        return DEFAULT_WINDOW
    if window <= 0:
        problems.append(f"label {LABEL_PREFIX}window must be positive")
    return window


def rollout_from_labels(
    service: str,
    labels: Mapping[str, str],
    *,
    mode: str,
    replicas: int | None,
    checked: bool,
) -> tuple[RolloutSpec, list[str]]:
    """The service's rollout from its deploy labels, and the problems found. ``checked``: the
    service has an HTTP check or analyses (what a canary step is judged by)."""
    problems: list[str] = []
    ours = {k: v for k, v in labels.items() if k.startswith(LABEL_PREFIX)}
    for key in sorted(set(ours) - KNOWN_LABELS):
        problems.append(f"unknown label {key} (known: {', '.join(sorted(KNOWN_LABELS))})")
    count = replicas if replicas is not None else 1
    default = 1 if checked and mode == "replicated" and count >= 2 else 0
    canary = _canary(ours.get(LABEL_PREFIX + "canary"), default, problems)
    if canary and mode != "replicated":
        problems.append(f"a canary step needs a replicated service, not {mode}")
    elif canary and canary >= count:
        problems.append(
            f"a canary of {canary} task(s) must be fewer than the service's {count} replicas"
        )
    window = _window(ours.get(LABEL_PREFIX + "window"), problems)
    after = ours.get(LABEL_PREFIX + "after", "")
    names = tuple(dict.fromkeys(n.strip() for n in after.split(",") if n.strip()))
    if service in names:
        problems.append(f"label {LABEL_PREFIX}after names the service itself")
    spec = RolloutSpec(canary=canary, window=window, after=names)
    return spec, [f"service {service}: {p}" for p in problems]


def waves(rollouts: Mapping[str, RolloutSpec]) -> tuple[tuple[str, ...], ...]:
    """The services in waves: each wave holds the services whose ``after`` are all in earlier
    waves. ``ValueError`` naming unknown services or a cycle."""
    unknown = sorted(
        f"{name} rolls out after {other!r}, which is not a service of this stack"
        for name, spec in rollouts.items()
        for other in spec.after
        if other not in rollouts
    )
    if unknown:
        raise ValueError("; ".join(unknown))
    done: set[str] = set()
    out: list[tuple[str, ...]] = []
    while len(done) < len(rollouts):
        wave = tuple(
            sorted(
                name
                for name, spec in rollouts.items()
                if name not in done and set(spec.after) <= done
            )
        )
        if not wave:
            stuck = ", ".join(sorted(set(rollouts) - done))
            raise ValueError(f"driftless.rollout.after makes a cycle among: {stuck}")
        out.append(wave)
        done.update(wave)
    return tuple(out)
