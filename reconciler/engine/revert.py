"""Phase revert: the offending commits (those in ``last_applied..failed`` that touch the
desired-state folder) reverted on top of the remote branch in one commit that names the failed
check and its output, and pushed. Never twice: the journal and a ``Driftless-Revert-Of``
trailer in the remote history both say whether it was pushed."""

from __future__ import annotations

from dataclasses import dataclass

from loguru import logger

from reconciler.config import Config
from reconciler.decisions import Halt, Next
from reconciler.engine.context import PassContext
from reconciler.journal import Journal
from reconciler.models import CheckResult, Phase, RevisionInfo


@dataclass(frozen=True)
class Reverted:
    journal: Journal  # with the revert commit once pushed
    reverted: tuple[str, ...] = ()  # the commits this pass's revert undoes
    halt: Halt | None = None  # stalled (cannot revert) or retry (remote unreachable)


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


async def _push(ctx: PassContext, journal: Journal, checks: tuple[CheckResult, ...]) -> Reverted:
    git, rev = ctx.ports.git, journal.revision
    found = journal.revert_commit or await git.find_revert(rev.sha)
    if found:
        logger.info("revert of {} already pushed: {}", rev.short, found)
        return Reverted(journal.reverted(found))
    commits = await git.offending_commits(journal.good_revision, rev.sha)
    if not commits:
        logger.warning("no commit under {} to revert", ctx.config.git.path)
        return Reverted(journal)
    subject, body = revert_message(ctx.config, journal, commits, checks)
    commit = await git.revert(commits, rev, ctx.masker.mask(subject), ctx.masker.mask(body))
    if commit:
        logger.warning("pushed revert {} of {}", commit, ", ".join(c.short for c in commits))
    journal = journal.reverted(commit)
    ctx.store.save_journal(journal)
    return Reverted(journal, tuple(c.sha for c in commits))


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
