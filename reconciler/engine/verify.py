"""Phase verify: Swarm finished rolling out every service of a wave (each task runs the new
spec, healthy, for its monitor window, and the tasks of the previous spec have stopped), then
the HTTP checks: each service's check sent to every one of its new tasks at its own address (no
other task can answer for one), and after the last wave the configuration's global checks.

A probe container that some checks need to reach into a stack network is started while Swarm
converges, so it costs no time of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from reconciler.canary import per_task
from reconciler.decisions import Halt
from reconciler.engine.context import PassContext
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
    """A network as Swarm names it (``back`` → ``<stack>_back``)."""
    if network is None or "_" in network:
        return network
    return f"{stack}_{network}"


def global_checks(ctx: PassContext) -> list[HealthCheck]:
    stack = ctx.config.stack
    return [replace(c, network=network_name(stack, c.network)) for c in ctx.config.health.checks]


async def service_checks(
    ctx: PassContext, desired: DesiredState, present: Sequence[str]
) -> list[HealthCheck]:
    """Each service's check, once per new task where it goes through a network."""
    checks: list[HealthCheck] = []
    for name in present:
        spec = desired.service(name)
        if spec is None or spec.health is None:
            continue
        if spec.health.network is None:
            checks.append(spec.health)
            continue
        tasks = await ctx.ports.swarm.tasks(ctx.config.stack, name)
        checks += per_task(spec.health, [t for t in tasks.new if t.running]) or [spec.health]
    return checks


def _retrieve(future: Warming) -> None:
    if not future.cancelled():
        future.exception()


def _networks(
    ctx: PassContext, desired: DesiredState, present: Sequence[str], last: bool
) -> list[str]:
    nets = {s.health.network for n in present if (s := desired.service(n)) and s.health}
    nets |= {c.network for c in global_checks(ctx)} if last else set()
    return sorted(n for n in nets if n)


async def _converge_then_check(
    ctx: PassContext,
    desired: DesiredState,
    services: Sequence[str],
    since: datetime,
    proxies: ProxyProvider | None,
    last: bool,
) -> list[CheckResult]:
    present = [n for n in services if desired.service(n) is not None]
    gone = [n for n in services if desired.service(n) is None]
    networks = _networks(ctx, desired, present, last)
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
        checks = await service_checks(ctx, desired, present)
        checks += global_checks(ctx) if last else []
        if any(not r.ok for r in results) or not checks:
            return results
        return results + await ctx.ports.checker.run(checks, proxies)
    finally:
        if warm is not None and not warm.done():
            warm.cancel()
            # a cancelled gather ends with CancelledError as its exception: retrieve it, so
            # stopping during verify does not log "exception was never retrieved"
            warm.add_done_callback(_retrieve)


async def verify(
    ctx: PassContext,
    desired: DesiredState,
    services: Sequence[str],
    since: datetime,
    proxies: ProxyProvider | None,
    *,
    last: bool = True,
) -> Verified | Halt:
    """The checks' results, or a halt when the engine could not be watched (not the
    revision's fault: the journal stays and the next pass verifies again). ``since``: when the
    change was deployed (older task failures are not this pass's); ``last``: the pass's last
    wave, after which the global checks run too."""
    ctx.enter(Phase.VERIFY, "verifying " + ", ".join(services))
    clock = ctx.ports.clock
    t0 = clock.monotonic()
    results = await ctx.attempt(
        Phase.VERIFY,
        lambda: _converge_then_check(ctx, desired, services, since, proxies, last),
    )
    if isinstance(results, Halt):
        return results
    return Verified(tuple(results), clock.monotonic() - t0)
