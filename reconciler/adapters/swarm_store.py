"""The engine's store kept in the Swarm (``state.store: swarm``): the status and the journal as
documents of :class:`reconciler.adapters.swarm_state.SwarmState`, written only by the lease's
holder; the checkout and the rendered file stay in this host's state directory (each agent makes
its own again).

A status that only moved its pass times is written at most once a minute: a no-op pass every few
seconds would otherwise add a Raft entry each time. The journal is written every time: it is what
another agent finishes a pass from."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from loguru import logger

from reconciler.adapters.swarm_state import SwarmState
from reconciler.errors import DockerError, JournalUnreadable, StateError
from reconciler.journal import Journal
from reconciler.state import journal_from_text, journal_to_text, owned
from reconciler.status import Status

#: status keys that change at every pass without changing what the status says
_PASSING = ("last_pass_at", "next_pass_at", "phase", "progress")
STATUS_EVERY = 60.0


def _unwritable(exc: DockerError) -> StateError:
    """The engine could not keep the state: like a full disk for the file store (nothing is
    applied without a journal; retried), named as the engine's trouble."""
    return StateError(exc.message, reason=exc.reason, detail=exc.detail)


class SwarmStore:
    def __init__(
        self,
        state: SwarmState,
        local_dir: Path,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.dir = local_dir
        self.rendered_dir = local_dir / "rendered"
        self._monotonic = monotonic
        self._saved: tuple[str, float] | None = None  # what says the last status written, when
        self._journal: bool | None = None  # whether a journal is saved (None: not read yet)

    def has_status(self) -> bool:
        reading = self.state.peek()
        return bool(reading and reading.documents.get("status"))

    def load_status(self, stack: str, environment: str) -> Status:
        text = self.state.document("status")
        if text is None:
            return Status(stack=stack, environment=environment)
        try:
            status = Status.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.error(
                "the status kept in the Swarm cannot be read ({}): starting from an empty one",
                exc,
            )
            return Status(stack=stack, environment=environment)
        return owned(status, stack, environment, f"the state in the Swarm ({self.state.name})")

    def save_status(self, status: Status) -> None:
        data = status.to_dict()
        says = json.dumps({k: v for k, v in data.items() if k not in _PASSING}, sort_keys=True)
        now = self._monotonic()
        if self._saved is not None:
            said, at = self._saved
            if said == says and now - at < STATUS_EVERY:
                return
        self._put("status", json.dumps(data, indent=1) + "\n")
        self._saved = (says, now)

    def load_journal(self) -> Journal | None:
        try:
            text = self.state.document("journal")
        except DockerError as exc:
            raise _unwritable(exc) from exc
        self._journal = text is not None
        if text is None:
            return None
        try:
            return journal_from_text(text)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise JournalUnreadable(f"the journal kept in the Swarm cannot be read: {exc}") from exc

    def save_journal(self, journal: Journal) -> None:
        self._put("journal", journal_to_text(journal))
        self._journal = True

    def clear_journal(self) -> None:
        self._put("journal", None)
        self._journal = False

    def _put(self, kind: str, text: str | None, *, keep_old: bool = False) -> None:
        try:
            self.state.put(kind, text, keep_old=keep_old)
        except DockerError as exc:
            raise _unwritable(exc) from exc

    def set_journal_aside(self) -> str:
        name = self.state.read().documents.get("journal", "")
        self._put("journal", None, keep_old=True)
        self._journal = False
        return f"config {name}"

    def has_journal(self) -> bool:
        """Whether a journal is saved, as this agent last read or wrote it."""
        return bool(self._journal)

    def rendered_path(self, stack: str) -> Path:
        return self.rendered_dir / f"{stack}.yml"

    def tidy(self) -> int:
        """Remove the state configs no lease object names (a write that lost its race, an agent
        killed between writing a document and naming it)."""
        try:
            return self.state.prune()
        except DockerError as exc:
            raise _unwritable(exc) from exc
