"""HTTP health checks with aiohttp: retries within the check's timeout, then an optional soak
during which every attempt must pass. A definitive failure (a task that answers with another
version than expected) ends the check at once. Checks that name a network go through a probe
proxy."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

from reconciler.checks import Judged, excerpt, judge_answer
from reconciler.errors import ReconcilerError
from reconciler.masking import Masker
from reconciler.models import CheckResult, HealthCheck
from reconciler.ports import Clock, ProxyProvider

#: an attempt's verdict and the status code it saw (None: no answer)
Attempt = tuple[Judged, int | None]


class HttpChecker:
    def __init__(self, clock: Clock, masker: Masker, *, request_timeout: float = 5.0) -> None:
        self._clock = clock
        self._masker = masker
        self._request_timeout = request_timeout

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._request_timeout))

    async def run(
        self, checks: Sequence[HealthCheck], proxies: ProxyProvider | None = None
    ) -> list[CheckResult]:
        if not checks:
            return []
        async with self._session() as session:
            return list(await asyncio.gather(*(self._run(session, c, proxies) for c in checks)))

    async def once(
        self, checks: Sequence[HealthCheck], proxies: ProxyProvider | None = None
    ) -> list[CheckResult]:
        """One attempt of each check, no retry: a canary's tasks are checked at every tick."""
        if not checks:
            return []
        async with self._session() as session:
            return list(await asyncio.gather(*(self._once(session, c, proxies) for c in checks)))

    async def _attempt(
        self, session: aiohttp.ClientSession | None, check: HealthCheck, proxy: str | None
    ) -> Attempt:
        assert session is not None
        try:
            async with session.get(
                check.url, proxy=proxy, headers={"User-Agent": "driftless-reconciler"}
            ) as response:
                body = await response.text(errors="replace")
                if response.headers.get("X-Driftless-Probe-Error"):
                    return Judged(
                        False, f"probe cannot reach {check.url}: {excerpt(body, 200)}"
                    ), None
                status = response.status
        except TimeoutError:
            return Judged(False, f"no answer within {self._request_timeout:.0f}s"), None
        except aiohttp.ClientError as exc:
            return Judged(False, f"{type(exc).__name__}: {self._masker.mask(str(exc))}"), None
        return judge_answer(check, status, body), status

    async def _proxy(self, check: HealthCheck, proxies: ProxyProvider | None) -> str | None:
        """The probe proxy into the check's network; ``ReconcilerError`` when there is none."""
        if not check.network:
            return None
        if proxies is None:
            raise ReconcilerError("no probe proxies configured")
        return await proxies.proxy_for(check.network)

    async def _once(
        self, session: aiohttp.ClientSession, check: HealthCheck, proxies: ProxyProvider | None
    ) -> CheckResult:
        url = self._masker.mask(check.url)
        try:
            proxy = await self._proxy(check, proxies)
        except ReconcilerError as exc:
            return CheckResult(name=check.name, ok=False, url=url, output=str(exc))
        judged, status = await self._attempt(session, check, proxy)
        return CheckResult(
            name=check.name,
            ok=judged.ok,
            url=url,
            status_code=status,
            output=judged.output,
            attempts=1,
            definitive=judged.definitive,
        )

    async def _run(
        self,
        session: aiohttp.ClientSession | None,
        check: HealthCheck,
        proxies: ProxyProvider | None,
    ) -> CheckResult:
        start = self._clock.monotonic()
        url = self._masker.mask(check.url)
        try:
            proxy = await self._proxy(check, proxies)
        except ReconcilerError as exc:
            return CheckResult(name=check.name, ok=False, url=url, output=str(exc))
        attempts, first_ok = 0, None
        while True:
            attempts += 1
            judged, status = await self._attempt(session, check, proxy)
            now = self._clock.monotonic()
            first_ok = now if judged.ok and first_ok is None else first_ok
            soaked = None if first_ok is None else now - first_ok
            output = _verdict(check, judged, soaked, now - start, attempts)
            if output is not None:
                return CheckResult(
                    name=check.name,
                    ok=judged.ok,
                    url=url,
                    status_code=status,
                    output=output,
                    attempts=attempts,
                    elapsed_seconds=round(now - start, 3),
                    definitive=judged.definitive,
                )
            await self._clock.sleep(check.interval)


def _verdict(
    check: HealthCheck, judged: Judged, soaked: float | None, elapsed: float, attempts: int
) -> str | None:
    """What the check says after this attempt, or None to try again. ``soaked``: how long it
    has passed since it first passed (None: it has not passed yet)."""
    if judged.ok:
        return judged.output if soaked is not None and soaked >= check.soak else None
    if judged.definitive:
        return judged.output
    if soaked is not None:
        return f"failed during the {check.soak:.0f}s soak: {judged.output}"
    if elapsed >= check.timeout:
        return f"still failing after {check.timeout:.0f}s ({attempts} tries): {judged.output}"
    return None
