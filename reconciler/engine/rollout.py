"""Apply and verify a pass's change, wave by wave (``driftless.rollout.after``), each wave gated
on the one before:

1. the wave's services with a canary step are deployed with their update held after the canary
   tasks, which are then analysed (:mod:`reconciler.engine.canary`), all at once; the first
   failure ends them all;
2. the wave is deployed as declared (a held update continues from its canary: the promotion);
3. it is verified (:mod:`reconciler.engine.verify`).

Later waves' changed services are left out of a wave's document (deployed without ``--prune``,
a service left out keeps running as it is); the last wave deploys everything, pruned if
configured. Whatever stops the rollout is a :class:`Stopped`; the pass then rolls back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from loguru import logger

from reconciler.canary import Step
from reconciler.decisions import Halt, Next
from reconciler.documents import held, wave_document
from reconciler.engine.apply import Applied, deploy
from reconciler.engine.canary import CanaryResult, canary_step, first_failure
from reconciler.engine.context import PassContext
from reconciler.engine.secrets import create_secrets
from reconciler.engine.verify import Verified, verify
from reconciler.errors import Reason
from reconciler.journal import Journal
from reconciler.models import CheckResult, DesiredState, Phase
from reconciler.ports import ProxyProvider
from reconciler.types import JSONDict


@dataclass(frozen=True)
class Stopped:
    """The rollout cannot go on: ``halt`` says what comes next (retry: the engine was lost;
    failed: the revision's fault, or not when ``blamed`` is false)."""

    halt: Halt
    checks: tuple[CheckResult, ...] = ()
    blamed: bool = True


@dataclass
class Progress:
    """The rollout's checks and the time spent deploying and verifying."""

    since: datetime
    checks: list[CheckResult] = field(default_factory=list)
    apply_seconds: float = 0.0
    verify_seconds: float = 0.0


async def _first_failure(steps: Sequence[Awaitable[CanaryResult]]) -> list[CanaryResult]:
    """Run the canary steps together; the first failure cancels the others."""
    tasks = [asyncio.ensure_future(s) for s in steps]
    done: list[CanaryResult] = []
    try:
        for next_done in asyncio.as_completed(tasks):
            result = await next_done
            done.append(result)
            if first_failure([result]) is not None:
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return done


def _removed(message: str) -> Halt:
    """A changed service removed while the pass watched it (``docker stack rm``, ``docker
    service rm``): not the revision's fault; the journal stays and the next pass deploys the
    revision again."""
    logger.warning("{}: removed during the rollout, deployed again by the next pass", message)
    return Halt(Next.RETRY, Reason.DRIFT_DETECTED, f"{message} (removed during the rollout)")


def _failed_canary(result: CanaryResult) -> Stopped:
    message = f"{result.service} canary: {result.message}"
    if result.reason is Reason.DRIFT_DETECTED:
        return Stopped(_removed(message))
    blamed = result.step is not Step.INCONCLUSIVE
    halt = Halt(Next.FAILED, result.reason, message)
    return Stopped(halt, result.checks, blamed)


class Rollout:
    def __init__(
        self,
        ctx: PassContext,
        journal: Journal,
        desired: DesiredState,
        doc: JSONDict,
        proxies: ProxyProvider | None,
        progress: Progress,
    ) -> None:
        self.ctx = ctx
        self.journal = journal
        self.desired = desired
        self.doc = doc
        self.proxies = proxies
        self.progress = progress

    async def run(self) -> Stopped | None:
        halt = await create_secrets(self.ctx, self.desired)  # before the first deploy names them
        if halt is not None:
            return Stopped(halt)
        waves = self.journal.rollout.waves or (self.journal.changed,)
        for index, wave in enumerate(waves):
            later = {s for w in waves[index + 1 :] for s in w}
            last = index == len(waves) - 1
            self.ctx.wave(index + 1, len(waves), tuple(wave))
            stopped = await self._wave(wave, later, last, f"wave {index + 1}/{len(waves)}")
            if stopped is not None and stopped.halt.next is Next.RETRY:
                # the next pass finishes it; it must know the engine went away meanwhile
                self.journal = replace(self.journal, engine_lost=True)
                self.ctx.store.save_journal(self.journal)
            if stopped is not None:
                self.ctx.stopped(f"{stopped.halt.reason}: {stopped.halt.message}")
                return stopped
        return None

    async def _deploy(self, doc: JSONDict, *, prune: bool, what: str) -> Stopped | None:
        self.ctx.enter(Phase.APPLY, f"applying {what}")
        self.journal = self.journal.at(Phase.APPLY)
        self.ctx.store.save_journal(self.journal)
        applied = await deploy(self.ctx, doc, prune=prune)
        if isinstance(applied, Applied):
            self.progress.apply_seconds += applied.seconds
            return None
        halt, seconds = applied
        self.progress.apply_seconds += seconds
        return Stopped(halt)

    async def _wave(
        self, wave: Sequence[str], later: set[str], last: bool, name: str
    ) -> Stopped | None:
        doc = wave_document(self.doc, later)
        canaries = {s: n for s, n in self.journal.rollout.canaries.items() if s in wave}
        if canaries:
            stopped = await self._canaries(doc, canaries, name)
            if stopped is not None:
                return stopped
        prune = last and self.ctx.config.sync.prune
        stopped = await self._deploy(doc, prune=prune, what=f"{name}: {', '.join(wave)}")
        if stopped is not None:
            return stopped
        return await self._verify(wave, last)

    async def _canaries(self, doc: JSONDict, canaries: dict[str, int], name: str) -> Stopped | None:
        what = ", ".join(
            f"{s} ({n} canary task{'s' if n > 1 else ''})" for s, n in canaries.items()
        )
        stopped = await self._deploy(held(doc, canaries), prune=False, what=f"{name}: {what}")
        if stopped is not None:
            return stopped
        self.ctx.enter(Phase.VERIFY, f"analysing the canary of {', '.join(canaries)}")
        self.journal = self.journal.at(Phase.VERIFY)
        self.ctx.store.save_journal(self.journal)
        clock = self.ctx.ports.clock
        t0 = clock.monotonic()
        steps = []
        for service, count in canaries.items():
            spec = self.desired.service(service)
            assert spec is not None  # a canary is only held for an update
            stable = self.journal.rollout.stable.get(service)
            steps.append(
                canary_step(self.ctx, spec, count, self.progress.since, stable, self.proxies)
            )
        results = await self.ctx.attempt(Phase.VERIFY, lambda: _first_failure(steps))
        self.progress.verify_seconds += clock.monotonic() - t0
        if isinstance(results, Halt):
            return Stopped(results)
        for result in results:
            self.progress.checks.extend(result.checks)
        failed = first_failure(results)
        if failed is not None:
            logger.error("canary of {} {}: {}", failed.service, failed.step.value, failed.message)
            return _failed_canary(failed)
        return None

    async def _verify(self, wave: Sequence[str], last: bool) -> Stopped | None:
        self.journal = self.journal.at(Phase.VERIFY)
        self.ctx.store.save_journal(self.journal)
        verified = await verify(
            self.ctx, self.desired, wave, self.progress.since, self.proxies, last=last
        )
        if isinstance(verified, Halt):
            return Stopped(verified)
        return self._verified(verified)

    def _verified(self, verified: Verified) -> Stopped | None:
        self.progress.verify_seconds += verified.seconds
        self.progress.checks.extend(verified.checks)
        if not verified.failed:
            return None
        first = verified.failed[0]
        message = f"{first.name}: {first.output}"
        if first.kind == "gone":  # removed by hand meanwhile: the next pass deploys it again
            return Stopped(_removed(message))
        if self.journal.engine_lost and first.output.startswith("not converged after"):
            # Swarm was still recovering from the engine's restart (tasks pending, ports held)
            logger.error("verify stopped: {} (after the engine went away)", message)
            halt = Halt(
                Next.FAILED,
                Reason.DOCKER_UNAVAILABLE,
                f"{message} (the engine went away during the rollout: rolled back, tried again)",
            )
            return Stopped(halt, verified.checks, blamed=False)
        if first.kind == "engine":  # the engine could not start tasks, for its own trouble
            logger.error("verify stopped: {} (the engine's trouble)", message)
            halt = Halt(Next.FAILED, Reason.DOCKER_UNAVAILABLE, message)
            return Stopped(halt, verified.checks, blamed=False)
        if first.kind == "registry":  # the image exists, the registry did not serve it
            logger.error("verify stopped: {}", message)
            halt = Halt(Next.FAILED, Reason.REGISTRY_UNAVAILABLE, message)
            return Stopped(halt, verified.checks, blamed=False)
        logger.error("verify failed: {}", message)
        halt = Halt(Next.FAILED, Reason.HEALTH_CHECK_FAILED, message)
        return Stopped(halt, verified.checks)


async def roll_out(
    ctx: PassContext, journal: Journal, desired: DesiredState, doc: JSONDict, progress: Progress
) -> Stopped | None:
    """Roll the change out, wave by wave; None when every wave passed."""
    proxies = ctx.ports.probes() if ctx.ports.probes else None
    try:
        return await Rollout(ctx, journal, desired, doc, proxies, progress).run()
    finally:
        if proxies is not None:
            await proxies.close()
