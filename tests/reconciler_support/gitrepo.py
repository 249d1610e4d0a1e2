"""A real bare git repository as the remote, and a developer's clone to push to it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, TypeVar

from reconciler.adapters.git import GitRepo

R = TypeVar("R", bound=GitRepo)
_OPENED: list[GitRepo] = []


def opened(repo: R) -> R:
    """Register a git adapter to be closed after the test (GitPython keeps helper processes)."""
    _OPENED.append(repo)
    return repo


def close_opened() -> None:
    while _OPENED:
        _OPENED.pop().close()


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env} if env else None,
    ).stdout.strip()


class Signer(Protocol):
    """A key that signs a developer's commits (``reconciler_support.signing``)."""

    @property
    def options(self) -> list[str]: ...

    @property
    def env(self) -> dict[str, str]: ...


class Remote:
    """``bare`` is the remote (``url`` is its file:// URL); ``work`` is a developer's clone."""

    def __init__(self, root: Path, path: str = "desired-state/test") -> None:
        self.bare = root / "remote.git"
        self.work = root / "dev"
        self.path = path
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(root, "clone", "-q", str(self.bare), str(self.work))
        git(self.work, "config", "user.name", "Dev")
        git(self.work, "config", "user.email", "dev@example.org")
        git(self.work, "checkout", "-q", "-b", "main")

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def write(
        self, files: dict[str, str], message: str, push: bool = True, sign: Signer | None = None
    ) -> str:
        if push and self.head():  # a developer starts from what the remote has (reverts too)
            git(self.work, "pull", "-q", "--rebase", "origin", "main")
        for rel, text in files.items():
            target = self.work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git(self.work, "add", "-A")
        if sign is None:
            git(self.work, "commit", "-q", "-m", message)
        else:
            git(self.work, *sign.options, "commit", "-q", "-S", "-m", message, env=sign.env)
        if push:
            self.push()
        return git(self.work, "rev-parse", "HEAD")

    def push(self) -> None:
        git(self.work, "pull", "-q", "--rebase", "origin", "main") if self.head() else None
        git(self.work, "push", "-q", "origin", "HEAD:main")

    def head(self) -> str | None:
        try:
            return git(self.bare, "rev-parse", "refs/heads/main")
        except subprocess.CalledProcessError:
            return None

    def log(self, fmt: str = "%H %s") -> list[str]:
        return git(self.bare, "log", f"--format={fmt}", "main").splitlines()

    def message(self, ref: str = "main") -> str:
        return git(self.bare, "log", "-1", "--format=%B", ref)

    def show(self, path: str, ref: str = "main") -> str:
        return git(self.bare, "show", f"{ref}:{path}") + "\n"

    def rewrite(self, keep: int) -> None:
        """A force-push: the branch keeps only its first ``keep`` commits."""
        shas = list(reversed(self.log("%H")))
        git(self.work, "reset", "-q", "--hard", shas[keep - 1])
        git(self.work, "push", "-q", "--force", "origin", "HEAD:main")
