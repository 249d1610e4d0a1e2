"""The SOPS secrets of a pass (:mod:`reconciler.sopsfiles`): created in the apply phase, after the
journal and before the first ``docker stack deploy`` that names them; the stack's old ones
(labelled ``driftless.sops``) removed once a pass succeeded and no service uses them. Never
during a rollback: the specs it restores name the old ones."""

from __future__ import annotations

from loguru import logger

from reconciler.decisions import Halt
from reconciler.engine.context import PassContext
from reconciler.errors import ReconcilerError
from reconciler.models import DesiredState, Phase


async def create_secrets(ctx: PassContext, desired: DesiredState) -> Halt | None:
    """Create the desired state's SOPS secrets that do not exist yet; the halt when the engine
    cannot (unreachable: retried; it refuses one: the revision failed)."""
    if not desired.sealed_secrets:
        return None
    swarm, stack = ctx.ports.swarm, ctx.config.stack
    created = await ctx.attempt(
        Phase.APPLY, lambda: swarm.create_secrets(stack, desired.sealed_secrets)
    )
    if isinstance(created, Halt):
        return created
    if created:
        logger.info("created secret(s) {}", ", ".join(created))
    return None


async def prune_secrets(ctx: PassContext, desired: DesiredState) -> None:
    """After a successful pass: remove the stack's SOPS secrets it no longer names (one still
    used is left). A failure is logged: the next successful pass tries again."""
    keep = {s.name for s in desired.sealed_secrets}
    try:
        removed = await ctx.ports.swarm.prune_secrets(ctx.config.stack, keep)
    except ReconcilerError as exc:
        logger.warning("old SOPS secrets not removed (tried again after the next change): {}", exc)
        return
    if removed:
        logger.info("removed secret(s) no service uses any more: {}", ", ".join(removed))
