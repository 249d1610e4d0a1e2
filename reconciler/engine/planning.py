"""Phase plan: the live services of the stack, and the field-by-field difference with the
desired state (create / update / remove / orphan / unchanged; drift)."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.decisions import Halt
from reconciler.engine.context import PassContext
from reconciler.models import DesiredState, FieldDiff, LiveState, Phase, Plan
from reconciler.plan import inventory, plan
from reconciler.status import ServiceStatus


@dataclass(frozen=True)
class Planned:
    live: LiveState
    plan: Plan
    inventory: tuple[ServiceStatus, ...]

    @property
    def drift(self) -> dict[str, tuple[FieldDiff, ...]]:
        return {c.service: c.diffs for c in self.plan.drifted}


async def plan_changes(ctx: PassContext, desired: DesiredState) -> Planned | Halt:
    ctx.enter(Phase.PLAN, f"planning {len(desired.services)} services against the Swarm")
    live = await ctx.attempt(Phase.PLAN, lambda: ctx.ports.swarm.live_state(ctx.config.stack))
    if isinstance(live, Halt):
        return live
    the_plan = plan(desired, live, prune=ctx.config.sync.prune)
    return Planned(live, the_plan, inventory(desired, live, the_plan))
