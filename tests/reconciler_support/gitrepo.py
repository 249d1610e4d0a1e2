"""A real bare git repository as the remote, and a developer's clone to push to it."""

from __future__ import annotations

import os
import shlex
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

    def protect(self, *refusal: str) -> None:
        """``main`` refuses pushes, as a forge's protected branch does: a ``pre-receive`` hook
        prints ``refusal`` (the forge's own words, one line each) and declines every push to
        ``main``; other branches are taken."""
        hook = self.bare / "hooks" / "pre-receive"
        lines = "\n".join(f"    echo {shlex.quote(line)} >&2" for line in refusal)
        hook.write_text(
            "#!/bin/sh\n"
            "while read -r old new ref; do\n"
            '  if [ "$ref" = refs/heads/main ]; then\n'
            f"{lines}\n"
            "    exit 1\n"
            "  fi\n"
            "done\n"
        )
        hook.chmod(0o755)

    def branches(self) -> set[str]:
        return set(
            git(self.bare, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()
        )

    def merge(self, branch: str) -> str:
        """The forge merges a pull request from ``branch`` (a fast-forward: its merge method
        aside, ``main`` then holds the revert commit) and deletes the branch."""
        sha = git(self.bare, "rev-parse", f"refs/heads/{branch}")
        git(self.bare, "merge-base", "--is-ancestor", "refs/heads/main", sha)
        git(self.bare, "update-ref", "refs/heads/main", sha)
        git(self.bare, "update-ref", "-d", f"refs/heads/{branch}")
        return sha

    def rewrite(self, keep: int) -> None:
        """A force-push: the branch keeps only its first ``keep`` commits."""
        shas = list(reversed(self.log("%H")))
        git(self.work, "reset", "-q", "--hard", shas[keep - 1])
        git(self.work, "push", "-q", "--force", "origin", "HEAD:main")
