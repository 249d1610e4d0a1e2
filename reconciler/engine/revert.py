"""Phase revert: the offending commits (those in ``last_applied..failed`` that touch the
desired-state folder) reverted on top of the remote branch in one commit that names the failed
check and its output, and pushed. Never twice: the journal and a ``Driftless-Revert-Of``
trailer in the remote history both say whether it was pushed.

When the branch takes no direct pushes (protected) the revert is proposed instead
(``git.revert_via``: ``pull_request`` always, ``auto`` when the push is refused as protected):
the same commit pushed to ``driftless/revert-<sha>`` and a pull (merge) request opened for it,
which counts as the revert. Never two: the journal keeps the branch and then the request, the
branch is found again on the remote, and an open request for it is looked up before one is
opened."""

from __future__ import annotations

from dataclasses import dataclass

from loguru import logger

from reconciler.config import Config
from reconciler.decisions import Halt, Next
from reconciler.engine.context import PassContext
from reconciler.errors import BranchProtected, RevertError
from reconciler.forges import revert_branch
from reconciler.journal import Journal
from reconciler.models import CheckResult, Phase, RevisionInfo


@dataclass(frozen=True)
class Reverted:
    journal: Journal  # with the revert commit once pushed
    reverted: tuple[str, ...] = ()  # the commits this pass's revert undoes
    halt: Halt | None = None  # stalled (cannot revert) or retry (remote unreachable)
    note: str = ""  # "revert proposed in <url>": for the pass's message


def revert_message(
    config: Config,
    journal: Journal,
    commits: tuple[RevisionInfo, ...],
    checks: tuple[CheckResult, ...],
) -> tuple[str, str]:
    """Subject and body of the revert commit (unmasked): what failed, the failed checks."""
    failed = journal.revision
    if len(commits) == 1:
        subject = f'Revert "{commits[0].subject}"'
    else:
        subject = f"Revert {len(commits)} commits: deploy of {failed.short} failed"
    lines = [
        f"Automatic revert by the Driftless reconciler: deploying {failed.short} to stack "
        f"{config.stack} ({config.environment}) failed and every service changed by it was "
        "rolled back.",
        "",
        f"Reason: {journal.failure_reason}: {journal.failure_message}",
    ]
    failed_checks = [c for c in checks if not c.ok]
    if failed_checks:
        lines += ["", "Failed checks:"]
        for c in failed_checks:
            where = f" ({c.url})" if c.url else ""
            output = c.output.replace("\n", "\n    ")
            lines.append(f"- {c.name}{where}: {output}")
    if journal.pins:
        lines += ["", "Images it deployed (by digest):"]
        lines += [f"- {image}@{digest}" for image, digest in sorted(journal.pins.items())]
    lines += ["", "The revision is quarantined: the reconciler will not apply it again."]
    return subject, "\n".join(lines)


def proposal_body(body: str, branch: str, base: str, via: str) -> str:
    """The pull (merge) request's description: the revert commit's body, why it is a request,
    and what merging does."""
    why = (
        "reverts go through pull requests here (`git.revert_via: pull_request`)"
        if via == "pull_request"
        else f"`{base}` refuses direct pushes (protected)"
    )
    return (
        f"{body.rstrip()}\n\n---\n\n"
        f"The reconciler did not push this revert to `{base}`: {why}, so it waits on `{branch}`. "
        f"The live stack already runs the last good revision; merging brings `{base}` back to "
        "it. Until then the reconciler refuses the failed revision and changes nothing.\n"
    )


async def _push(ctx: PassContext, journal: Journal, checks: tuple[CheckResult, ...]) -> Reverted:
    git, rev = ctx.ports.git, journal.revision
    if journal.revert_proposal:
        logger.info("revert of {} already proposed in {}", rev.short, journal.revert_proposal)
        return Reverted(journal, note=f"revert proposed in {journal.revert_proposal}")
    found = journal.revert_landed or await git.find_revert(rev.sha)
    if found:
        logger.info("revert of {} already pushed: {}", rev.short, found)
        return Reverted(journal.reverted(found))
    commits = await git.offending_commits(journal.good_revision, rev.sha, also=journal.bases)
    if not commits:
        logger.warning("no commit under {} to revert", ctx.config.git.path)
        return Reverted(journal)
    subject, body = (
        ctx.masker.mask(t) for t in revert_message(ctx.config, journal, commits, checks)
    )
    via = ctx.config.git.revert_via
    if journal.revert_branch is None and via != "pull_request":
        direct = await _push_direct(ctx, journal, commits, subject, body)
        if direct is not None:
            return direct
    return await _propose(ctx, journal, commits, subject, body)


async def _push_direct(
    ctx: PassContext, journal: Journal, commits: tuple[RevisionInfo, ...], subject: str, body: str
) -> Reverted | None:
    """Push the revert to the branch followed; None when it refuses direct pushes and
    ``git.revert_via`` is auto (the revert is to be proposed)."""
    try:
        commit = await ctx.ports.git.revert(commits, journal.revision, subject, body)
    except BranchProtected as refused:
        if ctx.config.git.revert_via != "auto":
            raise
        logger.warning("{}: proposing the revert instead", refused.message.split(";")[0])
        return None
    if commit:
        logger.warning("pushed revert {} of {}", commit, ", ".join(c.short for c in commits))
    journal = journal.reverted(commit)
    ctx.store.save_journal(journal)
    return Reverted(journal, tuple(c.sha for c in commits))


async def _propose(
    ctx: PassContext, journal: Journal, commits: tuple[RevisionInfo, ...], subject: str, body: str
) -> Reverted:
    """Push the revert to a branch of its own and open its pull (merge) request, each step
    journaled, each found again when a pass runs it twice."""
    forge, rev, base = ctx.ports.forge, journal.revision, ctx.config.git.branch
    if forge is None:
        raise RevertError(f"no forge to propose the revert of {rev.short} in (forge.*)")
    branch = revert_branch(rev.sha)
    commit = await ctx.ports.git.propose(commits, rev, subject, body, branch)
    if commit is None:
        return Reverted(journal)  # the remote branch no longer holds the changes
    journal = journal.proposing(commit, branch)
    ctx.store.save_journal(journal)
    description = proposal_body(body, branch, base, ctx.config.git.revert_via)
    proposal = await forge.propose(branch, base, subject, description)
    journal = journal.proposed(proposal.request.url)
    ctx.store.save_journal(journal)
    return Reverted(journal, tuple(c.sha for c in commits), note=proposal.note)


async def revert(ctx: PassContext, journal: Journal, checks: tuple[CheckResult, ...]) -> Reverted:
    """Only a change of the revision's definition is reverted (not a drift correction, not a
    failure that is not the revision's), and only when ``git.push_reverts`` is on."""
    if not (journal.definition_changed and journal.blamed and ctx.config.git.push_reverts):
        return Reverted(journal)
    if journal.good_revision is None:
        # the environment's first deploy: reverting it would delete its folder from git, and
        # there is nothing to go back to; the revision stays quarantined until a fix is pushed
        logger.warning("first deploy of {} failed: nothing to revert to", journal.revision.short)
        return Reverted(journal)
    ctx.enter(Phase.REVERT, f"reverting {journal.revision.short} in git")
    done = await ctx.attempt(Phase.REVERT, lambda: _push(ctx, journal, checks))
    if isinstance(done, Halt):
        if done.next is Next.RETRY:
            logger.error("revert not pushed yet, will retry: {}", done.message)
        return Reverted(journal, halt=done)
    return done
