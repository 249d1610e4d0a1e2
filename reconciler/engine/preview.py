"""What a pass would do, without doing it: the same fetch, render and plan phases as a pass
(``reconciler diff``), ending before anything is applied or recorded."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.decisions import Halt
from reconciler.engine.context import PassContext
from reconciler.engine.fetch import fetch
from reconciler.engine.planning import Planned, plan_changes
from reconciler.engine.render import quarantined, render_checkout
from reconciler.models import Phase, RevisionInfo
from reconciler.status import Status


@dataclass(frozen=True)
class Preview:
    head: RevisionInfo
    planned: Planned
    #: the revision is quarantined: a pass would refuse it
    refused: Halt | None = None


async def preview(ctx: PassContext, status: Status) -> Preview | Halt:
    try:
        head = await fetch(ctx)
        if isinstance(head, Halt):
            return head
        ctx.enter(Phase.RENDER, f"rendering {ctx.config.git.path} at {head.short}")
        desired = await ctx.attempt(Phase.RENDER, lambda: render_checkout(ctx))
        if isinstance(desired, Halt):
            return desired
        planned = await plan_changes(ctx, desired)
        if isinstance(planned, Halt):
            return planned
        return Preview(head, planned, quarantined(status, head, desired))
    finally:
        ctx.leave()
