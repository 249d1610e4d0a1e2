"""What code running inside the agent process (status page, JSON API, webhooks, chat
notifications) may use: the ``AgentControl`` protocol that ``reconciler.agent.Agent`` implements,
and the ``Component`` protocol for things the agent starts and stops with itself.

Program against these, not against the agent's internals::

    class StatusServer:                      # a Component
        name = "http"

        async def start(self, agent: AgentControl) -> None:
            self._agent = agent              # read agent.status, call agent.request_sync()
            ...                              # start an aiohttp/uvicorn server on this loop

        async def stop(self) -> None:
            ...

Everything here is called on the agent's event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from reconciler.events import Notifier
from reconciler.status import Status

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


@runtime_checkable
class AgentControl(Protocol):
    @property
    def status(self) -> Status:
        """The latest status snapshot (immutable; a new object after every phase)."""
        ...

    @property
    def metrics_registry(self) -> CollectorRegistry:
        """The registry holding every ``reconciler_*`` metric (serve it on ``/metrics``)."""
        ...

    async def request_sync(self, reason: str = "manual") -> bool:
        """Wake the loop for a pass now. Returns False when a pass is already queued (the
        request is coalesced into it). Never starts a second concurrent pass."""
        ...

    async def pause(self, reason: str = "") -> None:
        """Suspend applying: passes still fetch, validate, plan and report drift, but change
        nothing live. Persisted across restarts."""
        ...

    async def resume(self) -> None:
        """Resume applying and wake the loop."""
        ...

    async def sync_anyway(self, sha: str | None = None) -> str | None:
        """Allow one revision to be applied outside the sync windows, and wake the loop: ``sha``
        (the full sha, or a prefix of the branch head), or the branch head as the agent last
        fetched it. Returns the full sha allowed, or None when it cannot tell which revision
        (nothing fetched yet, or a prefix that is not the head's). A later head is held again."""
        ...

    async def release_quarantine(self, sha: str) -> bool:
        """Forget a quarantined revision so that it may be applied again (``all`` = every one).
        Returns False when it was not quarantined."""
        ...

    def add_notifier(self, notifier: Notifier) -> None:
        """Register a notifier; events are delivered on change or recovery only."""
        ...

    def record_notification(self, channel: str, ok: bool) -> None:
        """Count a notification sent outside ``Notifier.notify`` (metrics only)."""
        ...


@runtime_checkable
class Component(Protocol):
    """Something that lives as long as the agent (an HTTP server, a notification queue).
    ``start`` must return once started; ``stop`` is awaited on shutdown, after the last pass."""

    name: str

    async def start(self, agent: AgentControl) -> None: ...

    async def stop(self) -> None: ...
