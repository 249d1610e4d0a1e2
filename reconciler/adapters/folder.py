"""A desired-state folder on disk as the source of a pass, instead of the git remote
(``reconciler diff PATH``): the same render and plan, no history to revert."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from reconciler.errors import GitError
from reconciler.models import RevisionInfo
from reconciler.signatures import Signature


def repo_root(path: Path) -> Path:
    """The git work tree ``path`` is in (files it references must stay inside), or itself."""
    for parent in [path.resolve(), *path.resolve().parents]:
        if (parent / ".git").exists():
            return parent
    return path.resolve()


class LocalFolder:
    """Implements :class:`reconciler.ports.GitSource` for a folder inside ``root``."""

    def __init__(self, root: Path, folder: Path) -> None:
        self._root = root
        self._folder = folder

    @property
    def workdir(self) -> Path:
        return self._root

    async def fetch(self) -> RevisionInfo:
        digest = hashlib.sha256()
        for file in sorted(p for p in self._folder.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(self._folder)).encode())
            digest.update(file.read_bytes())
        return RevisionInfo(sha=digest.hexdigest()[:40], subject=f"the folder {self._folder}")

    async def checkout(self, sha: str) -> RevisionInfo:
        raise GitError("a local folder has no history to check out")

    async def signatures(
        self, since: str | None, head: str, *, every: bool, also: Sequence[str] = ()
    ) -> tuple[Signature, ...]:
        raise GitError("a local folder has no signatures to verify")

    async def offending_commits(
        self, good: str | None, bad: str, *, also: Sequence[str] = ()
    ) -> tuple[RevisionInfo, ...]:
        return ()

    async def find_revert(self, sha: str) -> str | None:
        return None

    async def revert(
        self, commits: Sequence[RevisionInfo], failed: RevisionInfo, subject: str, body: str
    ) -> str | None:
        raise GitError("a local folder cannot be reverted")

    async def propose(
        self,
        commits: Sequence[RevisionInfo],
        failed: RevisionInfo,
        subject: str,
        body: str,
        branch: str,
    ) -> str | None:
        raise GitError("a local folder cannot be reverted")
