"""The state directory: single-instance lock, status file and apply journal.

```
<state_dir>/
  lock            flock'ed by the running agent (holds its pid)
  status.json     the last Status (conditions, revisions, history, quarantine, reverts)
  journal.json    present only while a pass changes the live stack: what it changed and the
                  previous spec of each service, so a restart finishes or rolls back the pass
  journal.json.copy   the same, written just before it: a damaged journal is read from it
  rendered/       the stamped stack file given to docker stack deploy
  checkout/       the git checkout
```

Writes are atomic (temporary file, fsync, rename), so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from pathlib import Path

from loguru import logger

from reconciler.errors import JournalUnreadable, LockError, StateError
from reconciler.journal import Journal
from reconciler.serialize import from_jsonable, to_jsonable
from reconciler.status import Status


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically; a ``StateError`` (retried) when it cannot be
    written, and the earlier file is left as it was."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StateError(
            f"the state directory cannot be written: {path.name}: {exc.strerror or exc}"
        ) from exc
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class StateLock:
    """An exclusive, non-blocking ``flock`` on ``<state_dir>/lock``; released when the process
    ends, however it ends."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                holder = self.path.read_text().strip() or "unknown"
                raise LockError(
                    f"another reconciler (pid {holder}) holds {self.path}; "
                    "only one agent may manage a state directory"
                ) from exc
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StateStore:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.status_path = state_dir / "status.json"
        self.journal_path = state_dir / "journal.json"
        self.journal_copy = state_dir / "journal.json.copy"
        self.rendered_dir = state_dir / "rendered"

    def has_status(self) -> bool:
        return self.status_path.exists()

    def load_status(self, stack: str, environment: str) -> Status:
        if not self.status_path.exists():
            return Status(stack=stack, environment=environment)
        try:
            status = Status.from_dict(json.loads(self.status_path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            aside = self._set_aside(self.status_path)
            logger.error(
                "{} cannot be read ({}): set aside as {}; starting from an empty status (the "
                "history and the quarantine are in it; the live stack and git are not)",
                self.status_path, exc, aside.name,
            )  # fmt: skip
            return Status(stack=stack, environment=environment)
        return owned(
            status, stack, environment, str(self.status_path), ": use another state directory"
        )

    @staticmethod
    def _set_aside(path: Path) -> Path:
        aside = path.with_name(f"{path.name}.unreadable")
        os.replace(path, aside)
        return aside

    def save_status(self, status: Status) -> None:
        write_atomic(self.status_path, json.dumps(status.to_dict(), indent=1) + "\n")

    def load_journal(self) -> Journal | None:
        """The journal of the pass in flight, None when there is none. It is kept twice
        (``journal.json`` and its copy ``journal.json.copy``): a damaged one is read from the
        other; ``JournalUnreadable`` when both are."""
        if not self.journal_path.exists():
            return None
        try:
            return self._read_journal(self.journal_path)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            damaged = exc
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
            journal = self._read_journal(self.journal_copy)
            logger.error("{} cannot be read ({}): its copy is used", self.journal_path, damaged)
            return journal
        raise JournalUnreadable(f"{self.journal_path} cannot be read: {damaged}") from damaged

    @staticmethod
    def _read_journal(path: Path) -> Journal:
        return journal_from_text(path.read_text(encoding="utf-8"))

    def set_journal_aside(self) -> str:
        """Keep a journal that cannot be read as ``journal.json.unreadable`` (its name)."""
        with contextlib.suppress(FileNotFoundError):
            self.journal_copy.unlink()
        return self._set_aside(self.journal_path).name

    def has_journal(self) -> bool:
        return self.journal_path.exists()

    def save_journal(self, journal: Journal) -> None:
        text = journal_to_text(journal)
        write_atomic(self.journal_copy, text)
        write_atomic(self.journal_path, text)

    def clear_journal(self) -> None:
        for path in (self.journal_path, self.journal_copy):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def rendered_path(self, stack: str) -> Path:
        return self.rendered_dir / f"{stack}.yml"

    def tidy(self) -> int:
        """Nothing to tidy: each file is replaced whole (written aside, then renamed)."""
        return 0


def journal_to_text(journal: Journal) -> str:
    return json.dumps(to_jsonable(journal)) + "\n"


def journal_from_text(text: str) -> Journal:
    """``ValueError``/``KeyError``/``TypeError`` when the text is not a journal."""
    data = json.loads(text)
    if not data.get("failure_reason"):  # "" when an earlier version wrote it
        data["failure_reason"] = None
    return from_jsonable(Journal, data)


def owned(status: Status, stack: str, environment: str, where: str, advice: str = "") -> Status:
    """``status`` when it is the one of ``stack`` in ``environment``; else ``LockError``: the
    state (``where``) belongs to another stack, and this agent must not take it over."""
    if status.stack != stack or status.environment != environment:
        raise LockError(
            f"{where} belongs to stack {status.stack!r} ({status.environment}), "
            f"not {stack!r} ({environment}){advice}"
        )
    return status
