"""Phase apply: the journal first (so a crash can be finished or rolled back), then documents
given to ``docker stack deploy``: the whole desired state stamped with the revision, one wave of
it at a time, with a canary's update held after its canary tasks (:mod:`reconciler.documents`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from loguru import logger

from reconciler.decisions import Halt
from reconciler.documents import stamped_document
from reconciler.engine.context import PassContext
from reconciler.engine.planning import Planned
from reconciler.interpolate import escape_dollars
from reconciler.journal import Journal
from reconciler.models import DesiredState, LiveState, Phase, RevisionInfo
from reconciler.pinning import pin_document
from reconciler.types import JSONDict
from reconciler.waves import rollout_plan
from reconciler.yamlio import dump


@dataclass(frozen=True)
class Applied:
    seconds: float


def begin(
    ctx: PassContext,
    head: RevisionInfo,
    desired: DesiredState,
    planned: Planned,
    good: RevisionInfo | None,
    started: datetime,
    pins: Mapping[str, str],
) -> Journal:
    """Enter the apply phase: write the journal with every changed service's spec before and
    the way the change rolls out (waves, canary steps)."""
    changes = planned.plan.to_apply
    previous: dict[str, JSONDict | None] = {}
    for change in changes:
        current = planned.live.service(change.service)
        previous[change.service] = current.spec if current is not None else None
    definition_changed = not planned.plan.only_drift
    journal = Journal(
        revision=head,
        desired_hash=desired.desired_hash,
        phase=Phase.APPLY,
        started_at=started,
        changed=tuple(c.service for c in changes),
        previous=previous,
        good_revision=good.sha if good else None,
        definition_changed=definition_changed,
        rollout=rollout_plan(desired, planned.live, changes, definition_changed=definition_changed),
        pins=dict(pins),
        bases=ctx.base_folders(),
    )
    ctx.enter(
        Phase.APPLY, "applying: " + ", ".join(f"{c.action.value} {c.service}" for c in changes)
    )
    ctx.store.save_journal(journal)
    return journal


def document(journal: Journal, desired: DesiredState, live: LiveState) -> JSONDict:
    """The whole desired state, stamped, every image by digest (:mod:`reconciler.pinning`);
    services the pass does not change keep their label and the digest they run."""
    keep = {
        s.name: s.revision for s in live.services if s.revision and s.name not in journal.changed
    }
    stamped = stamped_document(desired, journal.revision.sha, keep)
    return pin_document(stamped, journal.changed, journal.pins, live)


async def _deploy(ctx: PassContext, doc: JSONDict, prune: bool) -> str:
    cfg = ctx.config
    path = ctx.store.rendered_path(cfg.stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(escape_dollars(doc)))
    return await ctx.ports.swarm.deploy(cfg.stack, path, prune=prune, time_limit=cfg.timeouts.apply)


async def deploy(ctx: PassContext, doc: JSONDict, *, prune: bool) -> Applied | tuple[Halt, float]:
    """``docker stack deploy`` of ``doc``; on failure the halt and the seconds it took."""
    clock = ctx.ports.clock
    t0 = clock.monotonic()
    output = await ctx.attempt(Phase.APPLY, lambda: _deploy(ctx, doc, prune))
    seconds = clock.monotonic() - t0
    if isinstance(output, Halt):
        return output, seconds
    logger.info("docker stack deploy: {}", output.replace("\n", "; "))
    return Applied(seconds)
