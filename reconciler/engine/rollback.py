"""Phase rollback: every service the pass changed, put back together to its spec from before the
pass (created ones removed, pruned ones re-created), then Swarm converges."""

from __future__ import annotations

from loguru import logger

from reconciler.decisions import Halt
from reconciler.engine.context import PassContext
from reconciler.journal import Journal
from reconciler.models import Phase


async def rollback(ctx: PassContext, journal: Journal) -> Journal | Halt:
    """The journal once the rollback is done, or the halt it calls for: retry (the engine is
    unreachable: the journal stays, the next pass rolls back again) or stalled (it did not
    converge). An earlier run that already rolled back is not repeated."""
    if journal.rollback_done:
        return journal
    journal = journal.at(Phase.ROLLBACK)
    ctx.store.save_journal(journal)
    ctx.enter(Phase.ROLLBACK, "rolling back " + ", ".join(journal.changed))
    restored = await ctx.attempt(
        Phase.ROLLBACK,
        lambda: ctx.ports.swarm.restore(
            ctx.config.stack, journal.previous, time_limit=ctx.config.timeouts.rollback
        ),
    )
    if isinstance(restored, Halt):
        return restored
    logger.info("rollback converged: {}", ", ".join(journal.changed))
    return journal
