"""Phase plan: the live services of the stack, and the field-by-field difference with the
desired state (create / update / remove / orphan / unchanged; drift)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from loguru import logger

from reconciler.decisions import Halt
from reconciler.engine.context import PassContext
from reconciler.errors import ReconcilerError
from reconciler.models import DesiredState, FieldDiff, LiveState, Phase, Plan
from reconciler.pinning import MovedTag, moved_tags, running_by_tag
from reconciler.placement import Node
from reconciler.plan import inventory, plan
from reconciler.status import ServiceStatus

#: the registry lookups of the running tags are advisory: a slow registry does not hold the pass
MOVED_TAGS_TIME_LIMIT = 10.0


@dataclass(frozen=True)
class Planned:
    live: LiveState
    plan: Plan
    inventory: tuple[ServiceStatus, ...]
    nodes: tuple[Node, ...] | None = None  # None: not read this pass

    @property
    def drift(self) -> dict[str, tuple[FieldDiff, ...]]:
        return {c.service: c.diffs for c in self.plan.drifted}


async def plan_changes(ctx: PassContext, desired: DesiredState) -> Planned | Halt:
    ctx.enter(Phase.PLAN, f"planning {len(desired.services)} services against the Swarm")
    live = await ctx.attempt(Phase.PLAN, lambda: ctx.ports.swarm.live_state(ctx.config.stack))
    if isinstance(live, Halt):
        return live
    the_plan = plan(desired, live, prune=ctx.config.sync.prune)
    services = inventory(desired, live, the_plan)
    if ctx.config.docker.preflight_images:
        moved = {m.service: m for m in await _moved(ctx, desired, live)}
        services = tuple(
            replace(s, tag_moved=moved[s.name].message) if s.name in moved else s for s in services
        )
    return Planned(live, the_plan, services, await _nodes(ctx))


async def _nodes(ctx: PassContext) -> tuple[Node, ...] | None:
    """The Swarm's nodes, for the status page: advisory (an engine that does not answer this
    now is asked again at the next pass)."""
    try:
        return tuple(await ctx.ports.swarm.nodes())
    except ReconcilerError as exc:
        logger.debug("the nodes were not read: {}", exc.message)
        return None


async def _moved(ctx: PassContext, desired: DesiredState, live: LiveState) -> tuple[MovedTag, ...]:
    """The services whose tag was pushed again since they were deployed (by digest, they keep
    running what they run). A registry that cannot be asked now is asked at the next pass."""
    running = running_by_tag({s.name: s.image for s in desired.services}, live)
    images = sorted({image for image, _ in running.values()})

    async def current(image: str) -> str | None:
        try:
            return await ctx.ports.swarm.image_digest(image)
        except ReconcilerError as exc:
            logger.debug("not checked whether the tag of {} moved: {}", image, exc.message)
            return None

    try:
        async with asyncio.timeout(MOVED_TAGS_TIME_LIMIT):
            found = await asyncio.gather(*(current(i) for i in images))
    except TimeoutError:
        logger.debug("not checked whether tags moved: the registry is slow")
        return ()
    moved = moved_tags(running, dict(zip(images, found, strict=True)))
    for tag in moved:
        key = f"{tag.service}:{tag.current}"
        if key not in ctx.announced:
            ctx.announced.add(key)
            logger.warning("{}", tag.message)
    return moved
