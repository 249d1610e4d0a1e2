"""The plan: a pure function of the desired and the live state, plus the inventory and the
readable form ``reconciler diff`` prints."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.fields import diff_fields
from reconciler.imageref import display_image
from reconciler.models import (
    Action,
    Cause,
    CheckResult,
    DesiredState,
    FieldDiff,
    LiveState,
    Plan,
    ServiceChange,
)
from reconciler.pinning import digest_of
from reconciler.status import ServiceStatus


def plan(desired: DesiredState, live: LiveState, *, prune: bool) -> Plan:
    """Per service: create, update (with the field diffs and whether git or a human changed it),
    remove (only with ``prune``), orphan (live, not in git, kept) or unchanged.

    A service whose ``driftless.spec-hash`` label differs from the rendered definition's hash
    changed in git; one whose hash matches but whose fields differ drifted."""
    changes: list[ServiceChange] = []
    for spec in desired.services:
        current = live.service(spec.name)
        if current is None:
            changes.append(
                ServiceChange(
                    spec.name,
                    Action.CREATE,
                    Cause.NEW,
                    (FieldDiff("image", spec.image, None),),
                    desired_hash=spec.spec_hash,
                )
            )
            continue
        diffs = diff_fields(spec.fields, current.fields)
        if current.spec_hash != spec.spec_hash:
            if not diffs:
                diffs = (FieldDiff("definition", spec.spec_hash, current.spec_hash),)
            action, cause = Action.UPDATE, Cause.DEFINITION
        elif diffs:
            action, cause = Action.UPDATE, Cause.DRIFT
        else:
            action, cause = Action.UNCHANGED, Cause.NONE
        changes.append(
            ServiceChange(spec.name, action, cause, diffs, spec.spec_hash, current.spec_hash)
        )
    wanted = {s.name for s in desired.services}
    for current in live.services:
        if current.name in wanted:
            continue
        changes.append(
            ServiceChange(
                current.name,
                Action.REMOVE if prune else Action.ORPHAN,
                Cause.GONE,
                (FieldDiff("service", None, display_image(current.fields.image)),),
                live_hash=current.spec_hash,
            )
        )
    return Plan(
        stack=desired.stack, changes=tuple(sorted(changes, key=lambda c: c.service)), prune=prune
    )


def inventory(
    desired: DesiredState | None,
    live: LiveState,
    the_plan: Plan | None,
    checks: Mapping[str, CheckResult] | None = None,
    healthy: Mapping[str, bool] | None = None,
) -> tuple[ServiceStatus, ...]:
    """One ``ServiceStatus`` per service in git or live."""
    names: set[str] = {s.name for s in live.services}
    if desired is not None:
        names |= {s.name for s in desired.services}
    out: list[ServiceStatus] = []
    for name in sorted(names):
        spec = desired.service(name) if desired else None
        current = live.service(name)
        change = the_plan.change(name) if the_plan else None
        action = change.action if change else Action.UNCHANGED
        running = current.replicas_running if current else 0
        wanted = current.replicas_desired if current else 0
        if spec is not None and spec.fields.replicas is not None:
            wanted = spec.fields.replicas
        in_sync = current is not None and action == Action.UNCHANGED
        health = (healthy or {}).get(name)
        if health is None and current is not None:
            health = running >= wanted if current.fields.mode == "replicated" else None
        out.append(
            ServiceStatus(
                name=name,
                image=spec.image if spec else None,
                live_image=display_image(current.fields.image) if current else None,
                live_digest=digest_of(current.fields.image) if current else None,
                mode=(spec.fields.mode if spec else current.fields.mode if current else ""),
                replicas_desired=wanted,
                replicas_running=running,
                in_sync=in_sync,
                healthy=health,
                revision=current.revision if current else None,
                spec_hash=current.spec_hash if current else None,
                action=action.value,
                drift=change.diffs if change and change.cause == Cause.DRIFT else (),
                last_check=(checks or {}).get(name),
            )
        )
    return tuple(out)


_SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REMOVE: "-",
    Action.ORPHAN: "?",
    Action.UNCHANGED: "=",
}


def describe(the_plan: Plan, *, verbose: bool = False) -> str:
    """The plan as ``reconciler diff`` prints it."""
    lines: list[str] = []
    shown: Iterable[ServiceChange] = (
        the_plan.changes
        if verbose
        else [c for c in the_plan.changes if c.action != Action.UNCHANGED]
    )
    for change in shown:
        note = {
            Cause.DRIFT: " (drift: changed outside git)",
            Cause.DEFINITION: "",
            Cause.NEW: "",
            Cause.GONE: " (removed from git; prune on)"
            if change.action == Action.REMOVE
            else " (removed from git; kept, prune off)",
            Cause.NONE: "",
        }[change.cause]
        lines.append(f"{_SYMBOL[change.action]} {change.service}: {change.action.value}{note}")
        if change.action in (Action.UPDATE, Action.CREATE):
            for d in change.diffs:
                lines.append(
                    f"    {d.field}: {d.live if d.live is not None else '(none)'} -> "
                    f"{d.desired if d.desired is not None else '(none)'}"
                )
    pending = len(the_plan.to_apply)
    orphans = sum(1 for c in the_plan.changes if c.action == Action.ORPHAN)
    summary = f"{pending} change(s) pending" if pending else "in sync"
    if orphans:
        summary += f", {orphans} orphan(s) kept"
    lines.append(f"stack {the_plan.stack}: {summary}")
    return "\n".join(lines)
