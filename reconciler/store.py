"""What the engine keeps between passes, wherever it is kept: :class:`reconciler.state.StateStore`
(a state directory on this host, one agent by ``flock``) or
:class:`reconciler.adapters.swarm_store.SwarmStore` (in the Swarm, one writer by lease)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from reconciler.journal import Journal
from reconciler.status import Status


class Store(Protocol):
    #: this host's directory: the git checkout and the rendered stack file (never shared)
    dir: Path
    rendered_dir: Path

    def has_status(self) -> bool: ...

    def load_status(self, stack: str, environment: str) -> Status: ...

    def save_status(self, status: Status) -> None: ...

    def load_journal(self) -> Journal | None: ...

    def save_journal(self, journal: Journal) -> None: ...

    def clear_journal(self) -> None: ...

    def set_journal_aside(self) -> str: ...

    def has_journal(self) -> bool: ...

    def rendered_path(self, stack: str) -> Path: ...

    def tidy(self) -> int:
        """Remove what an earlier holder left half-written (a new holder calls it once); how
        many things it removed."""
        ...
