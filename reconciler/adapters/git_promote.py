"""The commit of a promotion (``reconciler.promotion``): the next environment's files changed on
top of the branch followed and pushed to a branch of their own, for a pull request. A clone of
its own (``<state_dir>/promotion``), so it never disturbs the checkout a pass works in; the same
credentials and signing key as the agent's other commits. A branch pushed already (its commit
carries the promotion trailer) is found, not pushed again."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from pathlib import Path

import git
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from reconciler.adapters.git_env import git_env
from reconciler.adapters.keyring import Keyring
from reconciler.config import GitConfig
from reconciler.errors import GitError
from reconciler.faults import git_error
from reconciler.masking import Masker
from reconciler.promotion import TRAILER


class PromotionRepo:
    def __init__(self, config: GitConfig, workdir: Path, masker: Masker) -> None:
        self._config = config
        self._dir = workdir
        self._masker = masker
        self._keyring = Keyring(config, workdir.parent / "trust")
        self._lock = asyncio.Lock()

    def _open(self) -> git.Repo:
        try:
            repo = git.Repo(self._dir)
        except (InvalidGitRepositoryError, NoSuchPathError):
            if self._dir.exists():
                shutil.rmtree(self._dir)
            self._dir.mkdir(parents=True)
            repo = git.Repo.init(self._dir, initial_branch="driftless-promotion")
            repo.create_remote("origin", self._config.url)
        trust = self._keyring.prepare()
        repo.git.update_environment(**git_env(self._config, self._dir.parent), **trust.env)
        with repo.config_writer() as writer:
            for key, value in self._keyring.repo_settings(trust).items():
                section, _, option = key.rpartition(".")
                writer.set_value(section, option, value)
        return repo

    def _push(self, branch: str, files: Mapping[str, str], message: str, sha: str) -> str:
        repo, timeout, base = self._open(), self._config.timeout, self._config.branch
        ref = f"refs/heads/{branch}"
        if str(repo.git.ls_remote("origin", ref, kill_after_timeout=timeout)).strip():
            repo.git.fetch(
                "origin", f"+{ref}:refs/remotes/origin/{branch}", kill_after_timeout=timeout
            )
            grep = f"--grep={TRAILER}: {sha}"
            found = repo.git.log(f"origin/{branch}", "--format=%H", "-F", grep, "-n", "1").strip()
            if found:
                return str(found)
        repo.git.fetch(
            "origin", f"+refs/heads/{base}:refs/remotes/origin/{base}", kill_after_timeout=timeout
        )
        repo.git.checkout("--detach", "--force", f"origin/{base}")
        repo.git.clean("-ffdx")
        for path, text in files.items():
            target = self._dir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            repo.git.add(path)
        repo.git.commit("--no-verify", "-m", message)
        repo.git.push("--force", "origin", f"HEAD:{ref}", kill_after_timeout=timeout)
        return str(repo.head.commit.hexsha)

    async def push_branch(
        self, branch: str, files: Mapping[str, str], message: str, sha: str
    ) -> str:
        """Commit ``files`` (repository path → text) on top of the followed branch and push it to
        ``branch``; the commit (one pushed earlier for ``sha`` when there is one)."""

        def work() -> str:
            try:
                return self._push(branch, files, message, sha)
            finally:
                self._keyring.stop_agent()

        async with self._lock:
            try:
                return await asyncio.to_thread(work)
            except GitCommandError as exc:
                text = self._masker.mask(str(exc.stderr or exc).strip())
                raise git_error(f"cannot push the promotion to branch {branch}", text) from exc
            except OSError as exc:
                raise GitError(f"cannot prepare the promotion: {exc}") from exc
