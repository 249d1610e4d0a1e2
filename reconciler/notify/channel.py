"""One notification channel (Slack, Discord or a generic webhook): a ``Notifier`` that never
blocks a pass.

``notify(event)`` only filters, deduplicates and queues, and returns at once. A worker task per
channel delivers the queue in order, retrying with exponential backoff (and the server's
``Retry-After``) on network errors, timeouts, 429 and 5xx; other 4xx answers are final. The
outcome of each delivery is counted once, when it is known, with
``agent.record_notification(channel, ok)`` → ``reconciler_notifications_total``, and a failure is
logged (with the URL masked).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from loguru import logger

from reconciler.control import AgentControl
from reconciler.events import DeploySucceeded, DriftDetected, Event
from reconciler.links import RepoLinks
from reconciler.masking import Masker
from reconciler.notify import formats
from reconciler.notify.message import Message, build

Formatter = Callable[[Message, Event, str], dict[str, Any]]


@dataclass(frozen=True)
class Policy:
    on_success: bool = True
    on_drift_corrected: bool = False
    dedup_window: float = 3600.0
    retries: int = 4
    backoff: float = 2.0
    max_backoff: float = 60.0
    timeout: float = 10.0
    queue_size: int = 100


@dataclass(frozen=True)
class _Attempt:
    ok: bool
    final: bool
    detail: str
    retry_after: float | None = None


def format_for(kind: str, masker: Masker) -> Formatter:
    if kind == "slack":
        return lambda msg, _event, user: formats.slack(msg, user)
    if kind == "discord":
        return lambda msg, _event, user: formats.discord(msg, user)
    if kind == "webhook":
        return lambda msg, event, user: formats.webhook(msg, masker.redact(event.to_dict()), user)
    raise ValueError(f"unknown channel kind {kind!r}")


def dedup_key(event: Event) -> str:
    """Two events with the same key are the same alert."""
    rev = event.revision.sha if event.revision else ""
    parts = [event.kind.value, event.stack, event.environment, rev]
    for name in ("reason", "previous_reason", "commit", "corrected"):
        if hasattr(event, name):
            parts.append(str(getattr(event, name)))
    if isinstance(event, DriftDetected):
        parts.append(
            ";".join(
                f"{s}:{','.join(str(d) for d in event.diffs.get(s, ()))}" for s in event.services
            )
        )
    elif hasattr(event, "services"):
        parts.append(",".join(getattr(event, "services", ())))
    return "|".join(parts)


class Channel:
    """A ``Notifier``; ``name`` is the ``channel`` label of the metric (``slack``, ...)."""

    #: this notifier reports each delivery itself (agent.record_notification), later, once the
    #: retries are over; the agent must not count the hand-over as a delivery
    reports_delivery = True

    def __init__(
        self,
        name: str,
        kind: str,
        url: str,
        *,
        repo: RepoLinks,
        policy: Policy,
        masker: Masker,
        status_url: str = "",
        username: str = "Driftless",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self.kind = kind
        self._url = url
        self._masker = masker
        self._format = format_for(kind, masker)
        self._repo = repo
        self._policy = policy
        self._status_url = status_url
        self._username = username
        self._clock = clock
        self._seen: dict[str, datetime] = {}
        self._queue: asyncio.Queue[tuple[Event, dict[str, Any]]] = asyncio.Queue(policy.queue_size)
        self._agent: AgentControl | None = None
        self._session: aiohttp.ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None
        #: deliveries so far: (kind, ok, attempts) — for logs and tests
        self.delivered: list[tuple[str, bool, int]] = []

    # ---------------------------------------------------------------- lifecycle

    def start(self, agent: AgentControl, session: aiohttp.ClientSession) -> None:
        self._agent, self._session = agent, session
        self._worker = asyncio.create_task(self._run(), name=f"notify-{self.name}")
        self._worker.add_done_callback(self._worker_ended)

    def _worker_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("notification worker {} died: {}", self.name, task.exception())

    async def drain(self, grace: float) -> None:
        """Give queued messages ``grace`` seconds to go out, then stop the worker."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._queue.join()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        left = self._queue.qsize()
        if left:
            logger.warning("{}: {} notification(s) not sent at shutdown", self.name, left)
            for _ in range(left):
                self._count(False)

    # ---------------------------------------------------------------- Notifier

    async def notify(self, event: Event) -> None:
        if not self.wanted(event):
            return
        key = dedup_key(event)
        now = self._clock()
        last = self._seen.get(key)
        if last is not None and (now - last).total_seconds() < self._policy.dedup_window:
            logger.info(
                "{}: {} already sent {:.0f}s ago, not repeated",
                self.name,
                event.kind.value,
                (now - last).total_seconds(),
            )
            return
        self._seen = {
            k: t
            for k, t in self._seen.items()
            if (now - t).total_seconds() < self._policy.dedup_window
        }
        self._seen[key] = now
        payload = self._format(
            build(event, self._repo, self._masker.mask, self._status_url), event, self._username
        )
        try:
            self._queue.put_nowait((event, payload))
        except asyncio.QueueFull:
            logger.error(
                "{}: queue full, dropping the {} notification", self.name, event.kind.value
            )
            self._count(False)

    def wanted(self, event: Event) -> bool:
        if isinstance(event, DeploySucceeded):
            return self._policy.on_success
        if isinstance(event, DriftDetected) and event.corrected:
            return self._policy.on_drift_corrected
        return True

    # ---------------------------------------------------------------- delivery

    async def _run(self) -> None:
        while True:
            event, payload = await self._queue.get()
            try:
                await self._deliver(event, payload)
            except Exception as exc:  # never let one message stop the worker
                logger.error(
                    "{}: delivering {} crashed: {}",
                    self.name,
                    event.kind.value,
                    self._masker.mask(str(exc)),
                )
                self._count(False)
            finally:
                self._queue.task_done()

    async def _deliver(self, event: Event, payload: dict[str, Any]) -> None:
        policy = self._policy
        attempts = 0
        while True:
            attempts += 1
            result = await self._post(payload)
            if result.ok:
                self._count(True)
                self.delivered.append((event.kind.value, True, attempts))
                logger.info("{}: sent {} (attempt {})", self.name, event.kind.value, attempts)
                return
            if result.final or attempts > policy.retries:
                self._count(False)
                self.delivered.append((event.kind.value, False, attempts))
                logger.error(
                    "{}: could not send {} after {} attempt(s): {}",
                    self.name,
                    event.kind.value,
                    attempts,
                    self._masker.mask(result.detail),
                )
                return
            delay = min(policy.backoff * 2 ** (attempts - 1), policy.max_backoff)
            delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not crypto
            if result.retry_after is not None:
                delay = max(delay, min(result.retry_after, policy.max_backoff * 5))
            logger.warning(
                "{}: sending {} failed ({}), retrying in {:.1f}s",
                self.name,
                event.kind.value,
                self._masker.mask(result.detail),
                delay,
            )
            await asyncio.sleep(delay)

    async def _post(self, payload: dict[str, Any]) -> _Attempt:
        assert self._session is not None
        try:
            async with self._session.post(
                self._url,
                json=payload,
                timeout=aiohttp.ClientTimeout(total=self._policy.timeout),
                allow_redirects=False,
            ) as response:
                text = (await response.text(errors="replace"))[:300]
                if 200 <= response.status < 300:
                    return _Attempt(True, True, "")
                detail = f"HTTP {response.status}: {text.strip()}"
                retryable = response.status == 429 or response.status >= 500
                return _Attempt(False, not retryable, detail, _retry_after(response, text))
        except TimeoutError:
            return _Attempt(False, False, f"no answer within {self._policy.timeout:.0f}s")
        except aiohttp.ClientError as exc:
            return _Attempt(False, False, f"{type(exc).__name__}: {exc}")

    def _count(self, ok: bool) -> None:
        if self._agent is not None:
            self._agent.record_notification(self.name, ok)


def _retry_after(response: aiohttp.ClientResponse, body: str) -> float | None:
    """Seconds to wait: the ``Retry-After`` header, or Discord's JSON ``retry_after``."""
    header = response.headers.get("Retry-After")
    if header:
        with contextlib.suppress(ValueError):
            return max(0.0, float(header))
    if response.status == 429 and body.startswith("{"):
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            value = json.loads(body).get("retry_after")
            return max(0.0, float(value)) if value is not None else None
    return None
