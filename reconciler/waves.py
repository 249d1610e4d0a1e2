"""Which changed services of a pass roll out in which wave, and which of them hold a canary step
(pure). Decided once, when the pass begins, and kept in the journal, so a pass resumed after a
crash rolls out the same way.

Removed services go in the last wave. A canary step is held only where the new spec replaces
tasks (not for a new service, nobody is served by an old one; not for a change of replicas,
labels or update settings, which replaces no task; not for a drift correction, which puts back
what was verified before).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reconciler.imageref import parse_image
from reconciler.models import Action, DesiredState, FieldDiff, LiveState, ServiceChange

#: fields whose change replaces no task
_SERVICE_ONLY = ("labels.", "update_config.", "rollback_config.")


@dataclass(frozen=True)
class RolloutPlan:
    waves: tuple[tuple[str, ...], ...] = ()  # the changed services, wave by wave
    canaries: dict[str, int] = field(default_factory=dict)  # service → canary tasks
    stable: dict[str, str] = field(default_factory=dict)  # service → the image it replaces


def replaces_tasks(diffs: Sequence[FieldDiff]) -> bool:
    return any(d.field != "replicas" and not d.field.startswith(_SERVICE_ONLY) for d in diffs)


def _canary(change: ServiceChange, desired: DesiredState, definition_changed: bool) -> int:
    spec = desired.service(change.service)
    if spec is None or change.action is not Action.UPDATE or not definition_changed:
        return 0
    return spec.rollout.canary if replaces_tasks(change.diffs) else 0


def rollout_plan(
    desired: DesiredState,
    live: LiveState,
    changes: Sequence[ServiceChange],
    *,
    definition_changed: bool,
) -> RolloutPlan:
    changed = {c.service for c in changes}
    removed = {c.service for c in changes if c.action is Action.REMOVE}
    order = desired.waves or (tuple(sorted(s.name for s in desired.services)),)
    waves = [tuple(s for s in wave if s in changed and s not in removed) for wave in order]
    waves = [w for w in waves if w]
    leftover = sorted(changed - removed - {s for w in waves for s in w})
    if leftover:
        waves.append(tuple(leftover))
    if removed:
        if waves:
            waves[-1] = (*waves[-1], *sorted(removed))
        else:
            waves.append(tuple(sorted(removed)))
    canaries = {c.service: n for c in changes if (n := _canary(c, desired, definition_changed))}
    stable = {
        name: svc.fields.image for name in canaries if (svc := live.service(name)) is not None
    }
    return RolloutPlan(tuple(waves), canaries, stable)


def tag(image: str) -> str | None:
    """The tag of an image reference (None: pinned by digest only)."""
    try:
        return parse_image(image).tag
    except ValueError:
        return None
