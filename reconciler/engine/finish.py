"""Phase record, and every way a pass ends: the :class:`~reconciler.outcome.PassOutcome` built
from what the pass learnt (a :class:`Draft`) and how it ended. Messages are masked here, once."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from reconciler.decisions import RESULT_OF, Halt, Next
from reconciler.engine.context import PassContext
from reconciler.engine.planning import Planned
from reconciler.engine.render import render_checkout
from reconciler.engine.secrets import prune_secrets
from reconciler.errors import Reason, ReconcilerError
from reconciler.journal import Journal
from reconciler.models import CheckResult, DesiredState, PassResult, Phase, RevisionInfo
from reconciler.outcome import PassOutcome
from reconciler.plan import inventory, plan
from reconciler.status import ServiceStatus


@dataclass(frozen=True)
class Timings:
    apply_seconds: float | None = None
    verify_seconds: float | None = None


@dataclass(frozen=True)
class Draft:
    """What the pass has learnt so far."""

    trigger: str
    started: datetime
    head: RevisionInfo | None = None  # the branch's head, or the revision a resumed pass had
    desired: DesiredState | None = None
    planned: Planned | None = None
    fetch_failed: bool = False
    timings: Timings = field(default_factory=Timings)

    def outcome(
        self, ctx: PassContext, result: PassResult, reason: Reason, message: str
    ) -> PassOutcome:
        planned = self.planned
        return PassOutcome(
            result=result,
            reason=reason,
            message=ctx.masker.mask(message),
            trigger=self.trigger,
            revision=ctx.revision,
            desired=self.head,
            desired_hash=self.desired.desired_hash if self.desired else None,
            plan=planned.plan if planned else None,
            inventory=planned.inventory if planned else None,
            nodes=planned.nodes if planned else None,
            drift=planned.drift if planned else {},
            fetch_failed=self.fetch_failed,
            started_at=self.started,
            finished_at=ctx.ports.clock.now(),
            apply_seconds=self.timings.apply_seconds,
            verify_seconds=self.timings.verify_seconds,
            rollout=ctx.rollout,
        )


def halted(ctx: PassContext, draft: Draft, halt: Halt) -> PassOutcome:
    """A pass that ends before changing anything live (or when only retrying is left)."""
    out = draft.outcome(ctx, RESULT_OF[halt.next], halt.reason, halt.message)
    out = replace(
        out,
        detail=ctx.masker.mask(halt.detail),
        problems=tuple(ctx.masker.mask(p) for p in halt.problems),
        retry_after=halt.retry_after,
        stalled_reason=halt.reason if halt.next is Next.REFUSED else None,
    )
    if halt.reason is Reason.IN_SYNC and draft.head is not None:
        out = replace(out, applied=draft.head, applied_hash=out.desired_hash)
    return out


async def live_inventory(
    ctx: PassContext, desired: DesiredState | None, checks: tuple[CheckResult, ...]
) -> tuple[ServiceStatus, ...] | None:
    """The inventory after a change, with each service's last check (None: the engine could
    not be read)."""
    live = await ctx.attempt(Phase.RECORD, lambda: ctx.ports.swarm.live_state(ctx.config.stack))
    if isinstance(live, Halt):
        return None
    http = {c.name: c for c in checks if c.kind == "http"}
    healthy = {c.name: c.ok for c in checks}
    the_plan = plan(desired, live, prune=ctx.config.sync.prune) if desired else None
    return inventory(desired, live, the_plan, http, healthy)


async def succeeded(
    ctx: PassContext,
    draft: Draft,
    journal: Journal,
    desired: DesiredState,
    checks: tuple[CheckResult, ...],
) -> PassOutcome:
    ctx.enter(Phase.RECORD, f"deployed {journal.revision.short}: all checks passed")
    await prune_secrets(ctx, desired)
    inv = await live_inventory(ctx, desired, checks)
    ctx.store.clear_journal()
    drift_only = not journal.definition_changed
    out = draft.outcome(
        ctx,
        PassResult.SUCCESS,
        Reason.DRIFT_CORRECTED if drift_only else Reason.RECONCILIATION_SUCCEEDED,
        f"{'corrected drift on' if drift_only else 'deployed'} {', '.join(journal.changed)}",
    )
    return replace(
        out,
        desired_hash=desired.desired_hash,
        changed=journal.changed,
        checks=checks,
        applied=journal.revision,
        applied_hash=desired.desired_hash,
        inventory=inv or out.inventory,
        drift_corrected=bool(out.drift),
    )


def rollback_pending(
    ctx: PassContext, draft: Draft, journal: Journal, checks: tuple[CheckResult, ...], halt: Halt
) -> PassOutcome:
    """The engine could not be reached to roll back: the journal stays and the next pass rolls
    back again; the revision is quarantined already."""
    message = f"{journal.failure_message}; rollback pending: {halt.message}"
    out = draft.outcome(ctx, PassResult.ERROR, halt.reason, message)
    return replace(
        out,
        revision=journal.revision,
        changed=journal.changed,
        checks=checks,
        retry_after=halt.retry_after,
        quarantine=True,
    )


async def _rendered(ctx: PassContext) -> DesiredState | None:
    try:
        return await render_checkout(ctx)
    except (ReconcilerError, OSError):
        return None


@dataclass(frozen=True)
class Failure:
    """How a failed revision ended: the rollback's and the revert's part in it."""

    journal: Journal
    checks: tuple[CheckResult, ...]
    stall: Halt | None = None  # the rollback or the revert could not be done
    rollback_ok: bool = True
    reverted: tuple[str, ...] = ()
    keep_journal: bool = False  # the revert is retried by the next pass
    note: str = ""  # "revert proposed in <url>"


async def failed(ctx: PassContext, draft: Draft, failure: Failure) -> PassOutcome:
    journal = failure.journal
    ctx.enter(Phase.RECORD, f"recording the failure of {journal.revision.short}")
    if not failure.keep_journal:
        ctx.store.clear_journal()
    inv = await live_inventory(ctx, await _rendered(ctx), failure.checks)
    message = journal.failure_message
    if failure.note:
        message += f"; {failure.note}"
    stall = failure.stall
    if stall is not None:
        message += f"; {stall.reason}: {stall.message}"
    result = PassResult.ROLLED_BACK if failure.rollback_ok else PassResult.FAILED
    if failure.rollback_ok and not journal.blamed:
        result = PassResult.ERROR  # rolled back, not the revision's fault: tried again later
    out = draft.outcome(ctx, result, journal.failure_reason or Reason.INTERNAL_ERROR, message)
    return replace(
        out,
        revision=journal.revision,
        desired=draft.head or journal.revision,
        desired_hash=journal.desired_hash,
        changed=journal.changed,
        checks=failure.checks,
        rolled_back=journal.changed if failure.rollback_ok else (),
        quarantine=journal.blamed,
        # also a revert found in the remote: pushed by a run that died before recording it
        revert_commit=journal.revert_landed,
        revert_proposal=journal.revert_proposal,
        reverted=failure.reverted,
        detail=ctx.masker.mask(journal.failure_detail),
        stalled_reason=stall.reason if stall else None,
        problems=(ctx.masker.mask(stall.message),) if stall else (),
        inventory=inv or out.inventory,
    )
