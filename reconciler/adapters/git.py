"""The git remote, through GitPython: fetch into the state directory, find the commits to
revert, revert and push — to the branch followed, or to a branch of its own for a pull request
when the branch takes no direct pushes (``BranchProtected``, read by ``reconciler.faults``).

Credentials never appear in URLs, config files or process arguments (``git_env``). Every error
is translated here (``GitError`` to retry, ``RevertError`` when a human is needed) with secrets
masked; what git said to a fetch or a push is read by ``reconciler.faults``, so the reason names
the remote's trouble (``GitRemoteUnavailable``) apart from what a human must fix
(``ArtifactFailed``: credentials, host key, missing branch), and git's whole (masked) output is
the error's ``detail``. Blocking calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import git
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from reconciler.adapters.git_env import git_env
from reconciler.adapters.keyring import Keyring, read_signatures
from reconciler.config import GitConfig, read_secret
from reconciler.errors import GitError, RevertError, RevisionGone
from reconciler.faults import disk_error, git_error, protected_error, push_refusal
from reconciler.masking import Masker
from reconciler.models import RevisionInfo
from reconciler.signatures import Signature

T = TypeVar("T")
REVERT_TRAILER = "Driftless-Revert-Of"


def _error_text(exc: Exception) -> str:
    if isinstance(exc, GitCommandError):
        stderr = (exc.stderr or "").strip().removeprefix("stderr:").strip().strip("'").strip()
        # git's "hint:" lines advise a person at a terminal (git add, --continue): not our case
        lines = [line for line in stderr.splitlines() if not line.startswith("hint:")]
        return "\n".join(lines).strip() or str(exc)
    return str(exc)


class GitRepo:
    """The agent's checkout of the desired-state repository (``<state_dir>/checkout``)."""

    def __init__(self, config: GitConfig, checkout_dir: Path, masker: Masker) -> None:
        self.config = config
        self._dir = checkout_dir
        self._masker = masker
        self._lock = asyncio.Lock()
        self._repo: git.Repo | None = None
        if config.token_file is not None:
            masker.register(read_secret(config.token_file))
        self._keyring = Keyring(config, checkout_dir.parent / "trust")
        self._trust = self._keyring.prepare()

    @property
    def workdir(self) -> Path:
        return self._dir

    def close(self) -> None:
        """End the git helper processes GitPython keeps (cat-file) and forget the repository."""
        if self._repo is not None:
            self._repo.close()
            self._repo = None
        self._keyring.stop_agent()

    def _text(self, exc: Exception) -> str:
        """An error's text as people may see it: git's own words, secrets masked."""
        return self._masker.mask(_error_text(exc))

    @property
    def _url(self) -> str:
        return self._masker.mask(self.config.url)

    @property
    def _remote_ref(self) -> str:
        return f"refs/remotes/origin/{self.config.branch}"

    # ---------------------------------------------------------------- plumbing

    async def _run(self, func: Callable[[], T]) -> T:
        async with self._lock:
            return await asyncio.to_thread(func)

    def _open(self) -> git.Repo:
        if self._repo is not None:
            return self._repo
        repo: git.Repo | None = None
        try:
            repo = git.Repo(self._dir)
        except (InvalidGitRepositoryError, NoSuchPathError):
            repo = None
        if repo is None or repo.working_tree_dir is None:
            if self._dir.exists():
                shutil.rmtree(self._dir)
            self._dir.mkdir(parents=True)
            repo = git.Repo.init(self._dir, initial_branch="driftless")
        repo.git.update_environment(**git_env(self.config, self._dir.parent), **self._trust.env)
        remotes = {r.name: r for r in repo.remotes}
        if "origin" not in remotes:
            repo.create_remote("origin", self.config.url)
        elif next(iter(remotes["origin"].urls), None) != self.config.url:
            repo.git.remote("set-url", "origin", self.config.url)
        settings = {**self._keyring.repo_settings(self._trust), "advice.detachedHead": "false"}
        with repo.config_writer() as writer:
            for key, value in settings.items():
                section, _, option = key.rpartition(".")
                writer.set_value(section, option, value)
        self._repo = repo
        return repo

    def _git_fetch(self, repo: git.Repo) -> None:
        branch = self.config.branch
        try:
            repo.git.fetch(
                "--prune",
                "--no-tags",
                "origin",
                f"+refs/heads/{branch}:{self._remote_ref}",
                kill_after_timeout=self.config.timeout,
            )
        except GitCommandError as exc:
            raise git_error(f"cannot fetch {branch} from {self._url}", self._text(exc)) from exc

    @staticmethod
    def _info(commit: git.Commit) -> RevisionInfo:
        author = f"{commit.author.name} <{commit.author.email}>"
        summary = commit.summary
        return RevisionInfo(
            sha=commit.hexsha,
            subject=summary if isinstance(summary, str) else summary.decode(errors="replace"),
            author=author,
            committed_at=commit.committed_datetime,
        )

    def _checkout(self, repo: git.Repo, ref: str) -> RevisionInfo:
        repo.git.checkout("--detach", "--force", ref)
        repo.git.clean("-ffdx")
        return self._info(repo.head.commit)

    # ---------------------------------------------------------------- GitSource

    async def fetch(self) -> RevisionInfo:
        def work() -> RevisionInfo:
            repo = self._open()
            self._git_fetch(repo)
            return self._checkout(repo, self._remote_ref)

        try:
            return await self._run(work)
        except GitError:
            raise
        except (GitCommandError, OSError, ValueError) as exc:
            self._repo = None
            text = self._text(exc)
            raise disk_error("git checkout failed", text) or GitError(
                f"git checkout failed: {text}", detail=text
            ) from exc

    async def checkout(self, sha: str) -> RevisionInfo:
        def work() -> RevisionInfo:
            repo = self._open()
            try:
                repo.commit(sha)
            except ValueError:
                self._git_fetch(repo)
                try:
                    repo.commit(sha)
                except ValueError as exc:
                    raise RevisionGone(
                        f"revision {sha[:12]} no longer exists in {self._url}"
                    ) from exc
            return self._checkout(repo, sha)

        try:
            return await self._run(work)
        except (GitCommandError, ValueError) as exc:
            text = self._text(exc)
            raise disk_error(f"cannot check out {sha[:12]}", text) or GitError(
                f"cannot check out {sha[:12]}: {text}", detail=text
            ) from exc

    async def offending_commits(
        self, good: str | None, bad: str, *, also: Sequence[str] = ()
    ) -> tuple[RevisionInfo, ...]:
        def work() -> tuple[RevisionInfo, ...]:
            repo = self._open()
            path = [self.config.path, *also]
            if good and good != bad and self._is_ancestor(repo, good, bad):
                commits = list(repo.iter_commits(f"{good}..{bad}", paths=path))
            else:
                commits = list(repo.iter_commits(bad, paths=path, max_count=1))
            return tuple(self._info(c) for c in commits)

        return await self._run(work)

    @staticmethod
    def _is_ancestor(repo: git.Repo, older: str, newer: str) -> bool:
        try:
            return bool(repo.is_ancestor(repo.commit(older), repo.commit(newer)))
        except (GitCommandError, ValueError):
            return False

    async def signatures(
        self, since: str | None, head: str, *, every: bool, also: Sequence[str] = ()
    ) -> tuple[Signature, ...]:
        def work() -> tuple[Signature, ...]:
            repo = self._open()
            after = since if every and since and self._known(repo, since) else None
            return read_signatures(repo.git.log, head, after, [self.config.path, *also])

        try:
            return await self._run(work)
        except GitCommandError as exc:
            text = self._text(exc)
            raise GitError(
                f"cannot read the signatures of {head[:12]}: {text}", detail=text
            ) from exc

    @staticmethod
    def _known(repo: git.Repo, sha: str) -> bool:
        return bool(
            repo.git.rev_parse("--quiet", "--verify", f"{sha}^{{commit}}", with_exceptions=False)
        )

    def _find_revert(self, repo: git.Repo, sha: str) -> str | None:
        out = repo.git.log(
            self._remote_ref, "--format=%H", "-F", f"--grep={REVERT_TRAILER}: {sha}", "-n", "1"
        )
        return out.strip() or None

    async def find_revert(self, sha: str) -> str | None:
        def work() -> str | None:
            repo = self._open()
            self._git_fetch(repo)
            return self._find_revert(repo, sha)

        return await self._run(work)

    async def revert(
        self, commits: Sequence[RevisionInfo], failed: RevisionInfo, subject: str, body: str
    ) -> str | None:
        shas = [c.sha for c in commits]
        message = _revert_message(shas, failed.sha, subject, body)
        return await self._reverting(lambda: self._revert_and_push(shas, failed.sha, message))

    async def propose(
        self,
        commits: Sequence[RevisionInfo],
        failed: RevisionInfo,
        subject: str,
        body: str,
        branch: str,
    ) -> str | None:
        shas = [c.sha for c in commits]
        message = _revert_message(shas, failed.sha, subject, body)
        return await self._reverting(lambda: self._revert_to(branch, shas, failed.sha, message))

    async def _reverting(self, work: Callable[[], str | None]) -> str | None:
        def signed() -> str | None:
            try:
                return work()
            finally:
                self._keyring.stop_agent()  # signing the revert started one

        try:
            return await self._run(signed)
        except (RevertError, GitError):
            raise
        except (GitCommandError, OSError, ValueError) as exc:
            text = self._text(exc)
            failed_for = disk_error("revert failed", text) or RevertError(f"revert failed: {text}")
            raise failed_for from exc

    def _revert_and_push(self, shas: list[str], failed_sha: str, message: str) -> str | None:
        """Revert ``shas`` on the remote branch's head and push, again on a new head when the
        remote moved meanwhile. The revert commit (or the one already on the branch), or None
        when the branch no longer holds the changes."""
        repo = self._open()
        attempts = max(1, self.config.push_retries + 1)
        for attempt in range(1, attempts + 1):
            self._git_fetch(repo)
            done = self._find_revert(repo, failed_sha)
            if done:
                return done
            if not self._stage_revert(repo, shas):
                return None  # already undone upstream
            repo.git.commit("--no-verify", "-m", message)
            if self._push_revert(repo, attempt, attempts):
                return str(repo.head.commit.hexsha)
        return None  # pragma: no cover - the loop always returns or raises

    def _stage_revert(self, repo: git.Repo, shas: list[str]) -> bool:
        """Stage the revert of ``shas`` on the remote head: False when it changes nothing."""
        self._checkout(repo, self._remote_ref)
        try:
            repo.git.revert("--no-commit", *shas)
        except GitCommandError as exc:
            conflicts = repo.git.diff("--name-only", "--diff-filter=U").split()
            repo.git.revert("--abort")
            self._checkout(repo, self._remote_ref)
            where = f" (conflicts in {', '.join(conflicts)})" if conflicts else ""
            raise RevertError(
                f"cannot revert {', '.join(s[:12] for s in shas)} cleanly on top of "
                f"{self.config.branch}{where}: {self._text(exc)}; nothing was pushed"
            ) from exc
        if not repo.index.diff("HEAD"):
            self._checkout(repo, self._remote_ref)
            return False
        return True

    def _push_revert(self, repo: git.Repo, attempt: int, attempts: int) -> bool:
        """Push the revert commit: False when the remote moved and another attempt is left;
        ``BranchProtected`` when the branch takes changes through pull requests only."""
        branch = self.config.branch
        try:
            repo.git.push(
                "origin", f"HEAD:refs/heads/{branch}", kill_after_timeout=self.config.timeout
            )
        except GitCommandError as exc:
            text = self._text(exc)
            protected = protected_error(branch, text)
            if protected is not None:
                raise protected from exc
            moved = any(w in text for w in ("non-fast-forward", "fetch first", "rejected"))
            if moved and attempt < attempts:
                return False  # the remote moved: redo the revert on its new head
            if moved:
                raise RevertError(
                    f"the remote kept moving: revert not pushed after {attempts} tries"
                ) from exc
            raise git_error("cannot push the revert", text) from exc
        return True

    # ---------------------------------------------------------------- a revert for a pull request

    def _revert_to(self, branch: str, shas: list[str], failed_sha: str, message: str) -> str | None:
        """Revert ``shas`` on the remote branch's head and push that to ``branch`` (a branch of
        its own, for a pull request); the commit there, the one an earlier run pushed when there
        is one, or None when the remote branch no longer holds the changes."""
        repo = self._open()
        self._git_fetch(repo)
        found = self._proposed(repo, branch, failed_sha)
        if found:
            return found
        if not self._stage_revert(repo, shas):
            return None
        repo.git.commit("--no-verify", "-m", message)
        try:
            repo.git.push(
                "origin", f"HEAD:refs/heads/{branch}", kill_after_timeout=self.config.timeout
            )
        except GitCommandError as exc:
            text = self._text(exc)
            refused = push_refusal(text)
            if refused is not None:
                raise RevertError(
                    f"the remote refuses the revert on branch {branch} too: {refused}; nothing "
                    "was proposed",
                    detail=text,
                ) from exc
            raise git_error(f"cannot push the revert to branch {branch}", text) from exc
        return str(repo.head.commit.hexsha)

    def _proposed(self, repo: git.Repo, branch: str, failed_sha: str) -> str | None:
        """The revert of ``failed_sha`` an earlier run pushed to ``branch``, or None when the
        remote has no such branch."""
        ref, timeout = f"refs/heads/{branch}", self.config.timeout
        try:
            listed = repo.git.ls_remote("origin", ref, kill_after_timeout=timeout)
            if not str(listed).strip():
                return None
            tracking = f"refs/remotes/origin/{branch}"
            repo.git.fetch("--no-tags", "origin", f"+{ref}:{tracking}", kill_after_timeout=timeout)
        except GitCommandError as exc:
            raise git_error(f"cannot read branch {branch} of {self._url}", self._text(exc)) from exc
        grep = f"--grep={REVERT_TRAILER}: {failed_sha}"
        found = repo.git.log(tracking, "--format=%H", "-F", grep, "-n", "1").strip()
        if not found:
            raise RevertError(
                f"branch {branch} of {self._url} exists without the revert of {failed_sha[:12]}: "
                "nothing was pushed to it"
            )
        return str(found)


def _revert_message(shas: Sequence[str], failed_sha: str, subject: str, body: str) -> str:
    trailers = "\n".join(f"This reverts commit {s}." for s in shas)
    return f"{subject}\n\n{body.rstrip()}\n\n{trailers}\n\n{REVERT_TRAILER}: {failed_sha}\n"


def file_url(path: Path) -> str:
    return Path(os.path.abspath(path)).as_uri()
