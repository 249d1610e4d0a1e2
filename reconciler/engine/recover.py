"""Before a pass: a journal that cannot be read is rebuilt from the live stack
(``reconciler.recovery``), so the pass it belonged to is finished, not forgotten."""

from __future__ import annotations

from loguru import logger

from reconciler.decisions import Halt
from reconciler.engine.context import PassContext
from reconciler.errors import JournalUnreadable
from reconciler.journal import Journal
from reconciler.models import Phase
from reconciler.recovery import journal_from_live
from reconciler.status import Status


async def rebuilt_journal(
    ctx: PassContext, status: Status, damaged: JournalUnreadable
) -> Journal | Halt | None:
    """The journal rebuilt from the live stack (saved in place of the damaged one, which is kept
    aside), None when no pass was in flight, or the halt when the engine cannot be read (the
    damaged journal stays for the next pass)."""
    live = await ctx.attempt(
        Phase.RENDER, lambda: ctx.ports.swarm.live_state(ctx.config.stack), live_changed=True
    )
    if isinstance(live, Halt):
        return live
    journal = journal_from_live(live, status.last_applied, ctx.ports.clock.now())
    aside = ctx.store.set_journal_aside()
    if journal is None:
        logger.error("{}; kept as {}; no service was being changed", damaged.message, aside)
        return None
    ctx.store.save_journal(journal)
    logger.error(
        "{}; kept as {}; rebuilt from the live stack: {} changed by {}, verified again",
        damaged.message, aside, ", ".join(journal.changed), journal.revision.short,
    )  # fmt: skip
    return journal
