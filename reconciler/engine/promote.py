"""After a pass: the revision applied and verified here, proposed to the next environment
(``promote.path``) by digest, in a pull (merge) request that carries this environment's
verification (:mod:`reconciler.promotion`). Due once per applied revision while the stack is
Ready, for a revision this agent deployed and verified (not one it only found in sync, such as
its own revert); a failed revision is never applied, so never proposed. A forge or remote that
fails is tried again after the next pass; the pass itself is never failed by it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from loguru import logger

from reconciler.desired_files import IMAGES_FILES, find
from reconciler.engine.context import PassContext
from reconciler.errors import ReconcilerError
from reconciler.models import PassResult
from reconciler.promotion import branch, message, promoted_images, running_images
from reconciler.status import ConditionType, PromotionRecord, Status


def _due(ctx: PassContext, status: Status) -> bool:
    applied = status.last_applied
    if not ctx.config.promote.path or applied is None:
        return False
    if status.promotion is not None and status.promotion.revision.sha == applied.sha:
        return False
    in_sync = status.desired is not None and status.desired.sha == applied.sha
    verified = _verified_in(status, applied.sha) is not None  # deployed and checked, not a noop
    return in_sync and verified and status.is_true(ConditionType.READY)


def _verified_in(status: Status, sha: str) -> float | None:
    for entry in status.history:
        if entry.revision and entry.revision.sha == sha and entry.result is PassResult.SUCCESS:
            return entry.duration_seconds
    return None


async def promote(ctx: PassContext, status: Status) -> Status | None:
    """The status with the promotion proposed now, or None when none is due (or it must wait)."""
    cfg = ctx.config.promote
    promoter, forge = ctx.ports.promoter, ctx.ports.forge if cfg.pull_request else None
    if promoter is None or (forge is None and cfg.pull_request) or not _due(ctx, status):
        return None
    applied, now = status.last_applied, ctx.ports.clock.now()
    assert applied is not None
    env = cfg.environment or Path(cfg.path).name
    images = find(ctx.ports.git.workdir / cfg.path, IMAGES_FILES)
    if images is None:
        logger.warning("promotion to {}: {} has no images.yaml", env, cfg.path)
        return replace(status, promotion=PromotionRecord(applied, "", now))
    text, changed = promoted_images(
        images.read_text(encoding="utf-8"), running_images(status.inventory)
    )
    if not changed:
        logger.info("{} runs the images of {} already: nothing to promote", env, applied.short)
        return replace(status, promotion=PromotionRecord(applied, "", now))
    title, body = message(
        applied,
        ctx.config.environment,
        env,
        changed,
        status.inventory,
        _verified_in(status, applied.sha),
    )
    name, path = branch(applied.sha), f"{cfg.path.rstrip('/')}/{images.name}"
    try:
        await promoter.push_branch(name, {path: text}, f"{title}\n\n{body}\n", applied.sha)
        url = ""
        if forge is not None:
            proposal = await forge.propose(name, ctx.config.git.branch, title, body)
            url = proposal.request.url
    except ReconcilerError as exc:
        logger.warning("promotion of {} to {} waits: {}", applied.short, env, exc.message)
        return None
    logger.info("{} proposed to {} in {}", applied.short, env, url or f"branch {name}")
    return replace(status, promotion=PromotionRecord(applied, url, now, changed, name))
