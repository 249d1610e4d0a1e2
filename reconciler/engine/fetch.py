"""Phase fetch: the head of the configured branch, checked out in the state directory."""

from __future__ import annotations

from reconciler.decisions import Halt
from reconciler.engine.context import PassContext
from reconciler.models import Phase, RevisionInfo


async def fetch(ctx: PassContext) -> RevisionInfo | Halt:
    git = ctx.config.git
    ctx.enter(Phase.FETCH, f"fetching {git.branch} from {ctx.masker.mask(git.url)}")
    head = await ctx.attempt(Phase.FETCH, ctx.ports.git.fetch)
    if not isinstance(head, Halt):
        ctx.working_on(head)
    return head


async def checkout_again(ctx: PassContext, revision: RevisionInfo) -> RevisionInfo | Halt:
    """A resumed pass goes back to the revision it was deploying (not the branch's head)."""
    ctx.enter(Phase.FETCH, f"checking out {revision.short} again")
    return await ctx.attempt(
        Phase.FETCH, lambda: ctx.ports.git.checkout(revision.sha), live_changed=True
    )
