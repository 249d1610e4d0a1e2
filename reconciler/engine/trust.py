"""Part of phase fetch: the revision is deployed only if the right keys signed it
(``git.verify``, :mod:`reconciler.signatures`); otherwise it is refused before anything live is
touched, naming each commit, its signer and what is wrong."""

from __future__ import annotations

from dataclasses import replace

from loguru import logger

from reconciler.decisions import Halt, Next
from reconciler.engine.context import PassContext
from reconciler.errors import Reason
from reconciler.models import Phase, RevisionInfo
from reconciler.signatures import VerifyMode, verdict


def refusal(head: RevisionInfo, problems: tuple[str, ...]) -> Halt:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return Halt(
        Next.REFUSED,
        Reason.SIGNATURE_REFUSED,
        f"revision {head.short} refused: {problems[0]}{more}; push a commit signed by an "
        "allowed key",
        "\n".join(problems),
        problems,
    )


async def verify_signatures(
    ctx: PassContext, head: RevisionInfo, since: RevisionInfo | None
) -> RevisionInfo | Halt:
    """``head`` with who signed it, or the refusal. ``since``: the last applied revision (mode
    ``all`` checks every commit after it that touches the folder)."""
    mode = ctx.config.git.verify.mode
    if mode is VerifyMode.OFF:
        return head
    every = mode is VerifyMode.ALL and since is not None and since.sha != head.sha
    scope = f"{head.short} and the commits since {since.short}" if every and since else head.short
    ctx.enter(Phase.FETCH, f"verifying the signatures of {scope}")
    found = await ctx.attempt(
        Phase.FETCH,
        lambda: ctx.ports.git.signatures(
            since.sha if since else None, head.sha, every=every, also=ctx.base_folders()
        ),
    )
    if isinstance(found, Halt):
        return found
    result = verdict(found)
    if not result.trusted:
        return refusal(head, result.problems)
    logger.info("revision {} is signed by {}", head.short, result.signer)
    return replace(head, signed_by=result.signer)
