"""Phase pre-flight: everything the plan would deploy exists (the images it changes, in their
registries; the external secrets, configs and networks), before anything live is touched."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from loguru import logger

from reconciler.analysis import expand
from reconciler.decisions import Halt
from reconciler.engine.context import PassContext
from reconciler.engine.verify import network_name
from reconciler.errors import PreflightError, ReconcilerError
from reconciler.models import Action, DesiredState, LiveState, Phase, Plan, ServiceSpec
from reconciler.placement import Node, must_run, unplaceable
from reconciler.ports import ProxyProvider
from reconciler.waves import tag


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


def _analysed(desired: DesiredState, the_plan: Plan) -> list[ServiceSpec]:
    """The services whose canary this pass would analyse (updates: a new service has none)."""
    names = [c.service for c in the_plan.to_apply if c.action is Action.UPDATE]
    return [s for n in names if (s := desired.service(n)) is not None and s.analyses]


async def _proxy(proxies: ProxyProvider | None, network: str | None) -> str | None:
    """The probe into Prometheus's network; None when there is none to reach (yet)."""
    if proxies is None or network is None:
        return None
    try:
        return await proxies.proxy_for(network)
    except ReconcilerError as exc:
        logger.warning("analysis queries not checked: {}", exc.message)
        raise _Unreachable from exc


class _Unreachable(Exception):
    """Prometheus cannot be reached to check the queries: they are not refused for it."""


async def _queries(
    ctx: PassContext, desired: DesiredState, live: LiveState, the_plan: Plan
) -> list[str]:
    """The analyses whose query Prometheus refuses (one that cannot be asked is not refused:
    its measurements will be inconclusive)."""
    source, specs = ctx.ports.metrics, _analysed(desired, the_plan)
    if source is None or not specs:
        return []
    network = network_name(ctx.config.stack, ctx.config.analysis.network or None)
    proxies = ctx.ports.probes() if ctx.ports.probes and network else None
    problems: list[str] = []
    try:
        proxy = await _proxy(proxies, network)
        for spec in specs:
            current = live.service(spec.name)
            values = {
                "tag": tag(spec.image) or "",
                "stable_tag": tag(current.fields.image) or "" if current else "",
                "service": spec.name,
                "stack": ctx.config.stack,
            }
            for analysis in spec.analyses:
                refused = await source.check(expand(analysis.query, values), proxy)
                if refused:
                    problems.append(
                        f"analysis.yaml: {spec.name}: {analysis.name}: Prometheus refuses the "
                        f"query: {refused}"
                    )
    except _Unreachable:
        return []
    finally:
        if proxies is not None:
            await proxies.close()
    return problems


def _unplaceable(desired: DesiredState, the_plan: Plan, nodes: Sequence[Node]) -> list[str]:
    """The services the pass changes that must run a task but whose placement constraints no
    node of the Swarm meets, or fewer nodes than their replicas need."""
    found = []
    for change in the_plan.to_apply:
        spec = desired.service(change.service)
        if spec is None or not must_run(spec.fields.mode, spec.fields.replicas):
            continue
        if why := unplaceable(spec.name, spec.fields.placement, nodes, spec.fields.replicas):
            found.append(why)
    return found


async def _check(
    ctx: PassContext,
    desired: DesiredState,
    live: LiveState,
    the_plan: Plan,
    nodes: Sequence[Node] | None,
) -> dict[str, str]:
    """The digest of each image the pass deploys (image → digest), or ``PreflightError``."""
    swarm = ctx.ports.swarm
    images = images_to_check(desired, live, the_plan) if ctx.config.docker.preflight_images else []
    found = await asyncio.gather(*(swarm.image_digest(i) for i in images))
    objects = await swarm.missing_objects(
        desired.external_secrets, desired.external_configs, desired.external_networks
    )
    problems = [
        f"image {i} does not exist in its registry"
        for i, ok in zip(images, found, strict=True)
        if not ok
    ]
    problems += [f"{o} does not exist (declared external)" for o in objects]
    problems += _unplaceable(desired, the_plan, nodes if nodes is not None else await swarm.nodes())
    problems += await _queries(ctx, desired, live, the_plan)
    if problems:
        raise PreflightError("; ".join(problems))
    return {image: digest for image, digest in zip(images, found, strict=True) if digest}


async def preflight(
    ctx: PassContext,
    desired: DesiredState,
    live: LiveState,
    the_plan: Plan,
    nodes: Sequence[Node] | None = None,
) -> dict[str, str] | Halt:
    """What the plan deploys exists; the images' digests (image → digest) it is pinned to.
    ``nodes``: the Swarm's nodes as the plan read them (None: read here)."""
    ctx.enter(Phase.PREFLIGHT, "checking images, secrets, configs, networks and placement")
    return await ctx.attempt(Phase.PREFLIGHT, lambda: _check(ctx, desired, live, the_plan, nodes))
