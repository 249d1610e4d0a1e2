"""HTTP health checks with aiohttp: retries within the check's timeout, then an optional soak
during which every attempt must pass. Checks that name a network go through a probe proxy."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

import aiohttp

from reconciler.checks import excerpt, judge_answer
from reconciler.errors import ReconcilerError
from reconciler.masking import Masker
from reconciler.models import CheckResult, HealthCheck
from reconciler.ports import Clock, ProxyProvider


class HttpChecker:
    def __init__(self, clock: Clock, masker: Masker, *, request_timeout: float = 5.0) -> None:
        self._clock = clock
        self._masker = masker
        self._request_timeout = request_timeout

    async def run(
        self, checks: Sequence[HealthCheck], proxies: ProxyProvider | None = None
    ) -> list[CheckResult]:
        if not checks:
            return []
        timeout = aiohttp.ClientTimeout(total=self._request_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return list(await asyncio.gather(*(self._run(session, c, proxies) for c in checks)))

    async def _attempt(
        self, session: aiohttp.ClientSession, check: HealthCheck, proxy: str | None
    ) -> tuple[bool, int | None, str]:
        try:
            async with session.get(
                check.url, proxy=proxy, headers={"User-Agent": "driftless-reconciler"}
            ) as response:
                body = await response.text(errors="replace")
                if response.headers.get("X-Driftless-Probe-Error"):
                    return False, None, f"probe cannot reach {check.url}: {excerpt(body, 200)}"
                status = response.status
        except TimeoutError:
            return False, None, f"no answer within {self._request_timeout:.0f}s"
        except aiohttp.ClientError as exc:
            return False, None, f"{type(exc).__name__}: {self._masker.mask(str(exc))}"
        ok, output = judge_answer(check, status, body)
        return ok, status, output

    async def _run(
        self, session: aiohttp.ClientSession, check: HealthCheck, proxies: ProxyProvider | None
    ) -> CheckResult:
        start = self._clock.monotonic()
        url = self._masker.mask(check.url)
        proxy: str | None = None
        if check.network:
            try:
                assert proxies is not None, "no probe proxies configured"
                proxy = await proxies.proxy_for(check.network)
            except (ReconcilerError, AssertionError) as exc:
                return CheckResult(name=check.name, ok=False, url=url, output=str(exc))
        attempts = 0
        first_ok: float | None = None
        while True:
            attempts += 1
            ok, status, output = await self._attempt(session, check, proxy)
            now = self._clock.monotonic()

            result = functools.partial(
                CheckResult,
                name=check.name,
                url=url,
                status_code=status,
                attempts=attempts,
                elapsed_seconds=round(now - start, 3),
            )
            if ok:
                if first_ok is None:
                    first_ok = now
                if now - first_ok >= check.soak:
                    return result(ok=True, output=output)
            elif first_ok is not None:
                return result(
                    ok=False, output=f"failed during the {check.soak:.0f}s soak: {output}"
                )
            elif now - start >= check.timeout:
                return result(
                    ok=False,
                    output=f"still failing after {check.timeout:.0f}s ({attempts} tries): {output}",
                )
            await self._clock.sleep(check.interval)
