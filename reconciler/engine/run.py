"""One reconciliation pass, as one straight sequence of phases:

fetch → render → plan → pre-flight → apply → verify → (rollback → revert) → record

Each phase announces itself (a progress log line with revision and phase, and the status's
``phase``/``progress``) before it starts, and returns either what the next phase needs or a
:class:`~reconciler.decisions.Halt` that says what comes next. Pre-flight runs after the plan so
that only images the pass would actually deploy are looked up in their registries.

Before the first live change the pass writes a journal (:mod:`reconciler.journal`) with the
previous spec of every service it is about to change; a restart after a crash finds it and
finishes or rolls back that pass (:func:`resume`) instead of starting a new one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from loguru import logger

from reconciler.decisions import Halt, Next, hold
from reconciler.engine.apply import begin, document
from reconciler.engine.context import MUTATING, PassContext
from reconciler.engine.fetch import checkout_again, fetch
from reconciler.engine.finish import (
    Draft,
    Failure,
    Timings,
    failed,
    halted,
    rollback_pending,
    succeeded,
)
from reconciler.engine.planning import plan_changes
from reconciler.engine.preflight import preflight
from reconciler.engine.recover import rebuilt_journal
from reconciler.engine.render import render, render_again
from reconciler.engine.revert import revert
from reconciler.engine.rollback import rollback
from reconciler.engine.rollout import Progress, roll_out
from reconciler.engine.trust import verify_signatures
from reconciler.errors import JournalUnreadable
from reconciler.journal import Journal
from reconciler.logs import current_stack
from reconciler.models import CheckResult, DesiredState, LiveState, Phase
from reconciler.outcome import PassOutcome
from reconciler.status import Status
from reconciler.windows import verdict

__all__ = ["MUTATING", "run_pass"]


async def run_pass(ctx: PassContext, status: Status, trigger: str = "interval") -> PassOutcome:
    """One pass: a new one, or the one a journal says was interrupted."""
    started = ctx.ports.clock.now()
    ctx.revision = None
    ctx.rollout = None
    current_stack.set(ctx.config.stack)
    try:
        try:
            journal = ctx.store.load_journal()
        except JournalUnreadable as damaged:
            rebuilt = await rebuilt_journal(ctx, status, damaged)
            if isinstance(rebuilt, Halt):
                return halted(ctx, Draft("recovery", started), rebuilt)
            journal = rebuilt
        if journal is not None:
            return await resume(ctx, journal, started)
        return await _new_pass(ctx, status, Draft(trigger, started))
    finally:
        ctx.leave()


async def _new_pass(ctx: PassContext, status: Status, draft: Draft) -> PassOutcome:
    head = await fetch(ctx)
    if isinstance(head, Halt):
        return halted(ctx, replace(draft, fetch_failed=True), head)
    draft = replace(draft, head=head)
    head = await verify_signatures(ctx, head, status.last_applied)
    if isinstance(head, Halt):
        return halted(ctx, draft, head)
    draft = replace(draft, head=head)
    desired = await render(ctx, head, status)
    if isinstance(desired, Halt):
        return halted(ctx, draft, desired)
    draft = replace(draft, desired=desired)
    planned = await plan_changes(ctx, desired)
    if isinstance(planned, Halt):
        return halted(ctx, draft, planned)
    draft = replace(draft, planned=planned)
    sync = ctx.config.sync
    window = verdict(sync.windows, ctx.ports.clock.now()) if sync.windows else None
    anyway = status.sync_anyway == head.sha
    held = hold(
        planned.plan,
        short=head.short,
        paused=status.paused,
        self_heal=sync.self_heal,
        dry_run=sync.dry_run,
        window=window,
        sync_anyway=anyway,
    )
    if held is not None:
        return halted(ctx, draft, held)
    if window is not None and not window.open and anyway:
        logger.warning("applying {} outside the sync windows (sync anyway)", head.short)
    pins = await preflight(ctx, desired, planned.live, planned.plan, planned.nodes)
    if isinstance(pins, Halt):
        return halted(ctx, draft, pins)
    journal = begin(ctx, head, desired, planned, status.last_applied, draft.started, pins)
    return await deploy(ctx, draft, journal, desired, planned.live)


async def deploy(
    ctx: PassContext, draft: Draft, journal: Journal, desired: DesiredState, live: LiveState
) -> PassOutcome:
    """Roll the change out wave by wave (the journal is written); a failure rolls back every
    changed service and reverts, an engine that went away leaves the journal for the next
    pass."""
    progress = Progress(ctx.ports.clock.now())
    stopped = await roll_out(ctx, journal, desired, document(journal, desired, live), progress)
    timings = Timings(progress.apply_seconds, progress.verify_seconds or None)
    draft = replace(draft, timings=timings)
    checks = tuple(progress.checks)
    if stopped is None:
        return await succeeded(ctx, draft, journal, desired, checks)
    halt = stopped.halt
    if halt.next is Next.RETRY:  # not the revision's fault: the next pass finishes it
        return halted(ctx, draft, halt)
    failure = journal.failed(halt.reason, halt.message, halt.detail, blamed=stopped.blamed)
    return await fail(ctx, draft, failure, checks)


async def fail(
    ctx: PassContext, draft: Draft, journal: Journal, checks: tuple[CheckResult, ...]
) -> PassOutcome:
    """Roll back every changed service, revert the revision in git, record the failure."""
    rolled = await rollback(ctx, journal)
    stall: Halt | None = None
    if isinstance(rolled, Halt):
        if rolled.next is Next.RETRY:
            return rollback_pending(ctx, draft, journal, checks, rolled)
        stall = rolled
    journal = journal.rolled_back()
    ctx.store.save_journal(journal)
    reverted = await revert(ctx, journal, checks)
    retry = reverted.halt is not None and reverted.halt.next is Next.RETRY
    failure = Failure(
        reverted.journal,
        checks,
        stall=stall or (None if retry else reverted.halt),
        rollback_ok=stall is None,
        reverted=reverted.reverted,
        keep_journal=retry,
        note=_pending(reverted.halt) if retry else reverted.note,
    )
    return await failed(ctx, draft, failure)


def _pending(halt: Halt | None) -> str:
    """What the pass's message says of a revert the next pass will finish."""
    return f"revert pending ({halt.reason}): {halt.message}" if halt else ""


async def resume(ctx: PassContext, journal: Journal, started: datetime) -> PassOutcome:
    """Finish the pass a journal says was interrupted: deploy and verify the same revision again
    (→ success), or roll back to the journaled specs and revert."""
    ctx.working_on(journal.revision)
    logger.bind(phase=journal.phase.value).warning(
        "resuming the pass interrupted in phase {}", journal.phase.value
    )
    draft = Draft("recovery", started, head=journal.revision)
    if journal.phase in (Phase.ROLLBACK, Phase.REVERT):
        return await fail(ctx, draft, journal, ())
    inputs = await _inputs_again(ctx, journal)
    if isinstance(inputs, Halt):
        if inputs.next is Next.RETRY:
            return halted(ctx, draft, inputs)
        return await fail(ctx, draft, journal.failed(inputs.reason, inputs.message), ())
    desired, live = inputs
    ctx.enter(Phase.APPLY, "finishing the interrupted apply")
    journal = journal.at(Phase.APPLY)
    ctx.store.save_journal(journal)
    return await deploy(ctx, draft, journal, desired, live)


async def _inputs_again(
    ctx: PassContext, journal: Journal
) -> tuple[DesiredState, LiveState] | Halt:
    checked_out = await checkout_again(ctx, journal.revision)
    if isinstance(checked_out, Halt):
        return checked_out
    desired = await render_again(ctx)
    if isinstance(desired, Halt):
        return desired
    live = await ctx.attempt(
        Phase.RENDER, lambda: ctx.ports.swarm.live_state(ctx.config.stack), live_changed=True
    )
    if isinstance(live, Halt):
        return live
    return desired, live
