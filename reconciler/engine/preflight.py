"""Phase pre-flight: everything the plan would deploy exists (the images it changes, in their
registries; the external secrets, configs and networks), before anything live is touched."""

from __future__ import annotations

import asyncio

from reconciler.decisions import Halt
from reconciler.engine.context import PassContext
from reconciler.errors import PreflightError
from reconciler.models import Action, DesiredState, LiveState, Phase, Plan


def images_to_check(desired: DesiredState, live: LiveState, the_plan: Plan) -> list[str]:
    """The images a pass would pull: of created services, of changed images, of services that
    are not live (an unchanged service keeps running the image it has)."""
    images: set[str] = set()
    for change in the_plan.to_apply:
        spec = desired.service(change.service)
        if spec is None:
            continue
        new_image = any(d.field == "image" for d in change.diffs)
        if change.action == Action.CREATE or new_image or live.service(change.service) is None:
            images.add(spec.image)
    return sorted(images)


async def _check(ctx: PassContext, desired: DesiredState, live: LiveState, the_plan: Plan) -> None:
    swarm = ctx.ports.swarm
    images = images_to_check(desired, live, the_plan) if ctx.config.docker.preflight_images else []
    found = await asyncio.gather(*(swarm.image_exists(i) for i in images))
    objects = await swarm.missing_objects(
        desired.external_secrets, desired.external_configs, desired.external_networks
    )
    problems = [
        f"image {i} does not exist in its registry"
        for i, ok in zip(images, found, strict=True)
        if not ok
    ]
    problems += [f"{o} does not exist (declared external)" for o in objects]
    if problems:
        raise PreflightError("; ".join(problems))


async def preflight(
    ctx: PassContext, desired: DesiredState, live: LiveState, the_plan: Plan
) -> Halt | None:
    ctx.enter(Phase.PREFLIGHT, "checking images, secrets, configs and networks")
    return await ctx.attempt(Phase.PREFLIGHT, lambda: _check(ctx, desired, live, the_plan))
