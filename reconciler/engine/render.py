"""Phase render: the revision's desired state, validated (ours, then Docker's own
``docker stack config``), and refused if it is quarantined."""

from __future__ import annotations

import asyncio

from loguru import logger

from reconciler.decisions import Halt, Next
from reconciler.desired import render as render_folder
from reconciler.engine.context import PassContext
from reconciler.errors import Reason
from reconciler.interpolate import escape_dollars
from reconciler.models import DesiredState, Phase, RevisionInfo
from reconciler.sopsfiles import mask_candidates
from reconciler.status import Status
from reconciler.yamlio import dump


async def render_checkout(ctx: PassContext) -> DesiredState:
    """Render the checked-out revision; raises ``ValidationError`` (or ``DockerError`` when
    Docker's own check cannot run). The values of its SOPS secrets are masked from then on.
    In a worker thread: decrypting runs sops."""
    folder = ctx.ports.git.workdir / ctx.config.git.path
    # decrypting runs sops and a stack file that extends a base is merged by the docker CLI
    desired = await asyncio.to_thread(render_folder, folder, ctx.render_options())
    for value in mask_candidates(desired.sealed_secrets):
        ctx.masker.register(value)
    if ctx.config.docker.validate_with_cli:
        path = ctx.store.rendered_dir / "candidate.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump(escape_dollars(desired.document)))
        await ctx.ports.swarm.validate_compose(path)
    return desired


def quarantined(status: Status, head: RevisionInfo, desired: DesiredState) -> Halt | None:
    """A revision that failed before (or renders to the same content as one) is refused: it
    needs a fix, or, when its revert waits in a pull request, that request to be merged."""
    entry = status.is_quarantined(head.sha, desired.desired_hash)
    if entry is None:
        return None
    revert = status.revert_for(entry.revision.sha)
    if revert is not None and revert.proposal:
        return Halt(
            Next.WAITING,
            Reason.REVERT_PROPOSED,
            f"revision {head.short} is quarantined ({entry.reason}, as {entry.revision.short}): "
            f"revert proposed in {revert.proposal}; the last good revision runs until it is "
            "merged",
        )
    return Halt(
        Next.REFUSED,
        Reason.QUARANTINED,
        f"revision {head.short} is quarantined: {entry.reason}: {entry.message} "
        f"(it failed as {entry.revision.short}); push a fix to deploy again",
    )


async def render(ctx: PassContext, head: RevisionInfo, status: Status) -> DesiredState | Halt:
    ctx.enter(Phase.RENDER, f"rendering {ctx.config.git.path} at {head.short} ({head.subject})")
    desired = await ctx.attempt(Phase.RENDER, lambda: render_checkout(ctx))
    if isinstance(desired, Halt):
        return desired
    refused = quarantined(status, head, desired)
    if refused is not None:
        return refused
    for warning in desired.warnings:
        logger.warning("{}", warning)
    return desired


async def render_again(ctx: PassContext) -> DesiredState | Halt:
    """A resumed pass renders the revision it was deploying once more."""
    ctx.enter(Phase.RENDER, "rendering it again")
    return await ctx.attempt(Phase.RENDER, lambda: render_checkout(ctx), live_changed=True)
