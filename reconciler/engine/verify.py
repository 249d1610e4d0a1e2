"""Phase verify: Swarm finished rolling out every changed service (each task runs the new spec,
healthy, and the tasks of the previous spec have stopped), then the HTTP checks.

A probe container that some checks need to reach into a stack network is started while Swarm
converges, so it costs no time of its own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime

from reconciler.decisions import Halt
from reconciler.engine.context import PassContext
from reconciler.journal import Journal
from reconciler.models import CheckResult, DesiredState, HealthCheck, Phase
from reconciler.ports import ProxyProvider

Warming = asyncio.Future[list[str | BaseException]]


@dataclass(frozen=True)
class Verified:
    checks: tuple[CheckResult, ...]
    seconds: float

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.ok)


def network_name(stack: str, network: str | None) -> str | None:
    """A check's network as Swarm names it (``back`` → ``<stack>_back``)."""
    if network is None or "_" in network:
        return network
    return f"{stack}_{network}"


def http_checks(ctx: PassContext, desired: DesiredState, present: list[str]) -> list[HealthCheck]:
    """The checks of the changed services, then the global ones from the configuration."""
    checks = [spec.health for n in present if (spec := desired.service(n)) and spec.health]
    stack = ctx.config.stack
    checks += [replace(c, network=network_name(stack, c.network)) for c in ctx.config.health.checks]
    return checks


def _retrieve(future: Warming) -> None:
    if not future.cancelled():
        future.exception()


async def _converge_then_check(
    ctx: PassContext,
    desired: DesiredState,
    journal: Journal,
    since: datetime,
    proxies: ProxyProvider | None,
) -> list[CheckResult]:
    present = [n for n in journal.changed if desired.service(n) is not None]
    gone = [n for n in journal.changed if desired.service(n) is None]
    checks = http_checks(ctx, desired, present)
    networks = sorted({c.network for c in checks if c.network})
    warm: Warming | None = None
    if proxies is not None and networks:
        warm = asyncio.gather(*(proxies.proxy_for(n) for n in networks), return_exceptions=True)
    try:
        converged = await ctx.ports.swarm.wait_converged(
            ctx.config.stack,
            present,
            since=since,
            time_limit=ctx.config.timeouts.verify,
            expected_gone=gone,
        )
        results = [converged[n] for n in (*present, *gone) if n in converged]
        if warm is not None:
            await warm  # errors surface again, per check, from proxy_for
        if any(not r.ok for r in results) or not checks:
            return results
        return results + await ctx.ports.checker.run(checks, proxies if networks else None)
    finally:
        if warm is not None and not warm.done():
            warm.cancel()
            # a cancelled gather ends with CancelledError as its exception: retrieve it, so
            # stopping during verify does not log "exception was never retrieved"
            warm.add_done_callback(_retrieve)


async def verify(
    ctx: PassContext, desired: DesiredState, journal: Journal, since: datetime
) -> Verified | Halt:
    """The checks' results, or a halt when the engine could not be watched (not the
    revision's fault: the journal stays and the next pass verifies again). ``since``: when the
    deploy started (older task failures are not this pass's)."""
    ctx.enter(Phase.VERIFY, "verifying " + ", ".join(journal.changed))
    clock = ctx.ports.clock
    t0 = clock.monotonic()
    proxies = ctx.ports.probes() if ctx.ports.probes else None
    try:
        results = await ctx.attempt(
            Phase.VERIFY, lambda: _converge_then_check(ctx, desired, journal, since, proxies)
        )
    finally:
        if proxies is not None:
            await proxies.close()
    if isinstance(results, Halt):
        return results
    return Verified(tuple(results), clock.monotonic() - t0)
