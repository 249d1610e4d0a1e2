"""The git adapter against a real bare repository: fetch, find the offending commits, revert and
push (also when the remote moves meanwhile), refuse to push a revert that does not apply, never
revert twice, and never show credentials."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from reconciler_support.gitrepo import Remote, git, opened

from reconciler.adapters.git import REVERT_TRAILER, GitRepo
from reconciler.config import GitConfig
from reconciler.errors import GitError, RevertError
from reconciler.masking import Masker
from reconciler.models import RevisionInfo

IMAGES = "desired-state/test/images.yaml"
STACK = "desired-state/test/stack.yml"


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    r = Remote(tmp_path)
    r.write({STACK: "services: {api: {}}\n", IMAGES: "api: r/api:1\n"}, "Add the api")
    return r


def _repo(remote: Remote, tmp_path: Path, **kw: object) -> GitRepo:
    config = GitConfig(url=remote.url, path="desired-state/test", push_retries=2, timeout=30, **kw)  # type: ignore[arg-type]
    return opened(GitRepo(config, tmp_path / "state" / "checkout", Masker()))


async def test_fetch_checks_out_the_head_and_follows_new_commits(
    remote: Remote, tmp_path: Path
) -> None:
    repo = _repo(remote, tmp_path)
    first = await repo.fetch()
    assert first.sha == remote.head()
    assert first.subject == "Add the api"
    assert first.author == "Dev <dev@example.org>"
    assert (repo.workdir / IMAGES).read_text() == "api: r/api:1\n"
    (repo.workdir / "junk").write_text("left by someone")
    (repo.workdir / IMAGES).write_text("edited by hand")
    second_sha = remote.write({IMAGES: "api: r/api:2\n"}, "Bump api to 2")
    second = await repo.fetch()
    assert second.sha == second_sha
    assert (repo.workdir / IMAGES).read_text() == "api: r/api:2\n"
    assert not (repo.workdir / "junk").exists()
    # a fresh agent on the same state directory reuses the checkout
    assert (await _repo(remote, tmp_path).fetch()).sha == second_sha


async def test_offending_commits_are_those_touching_the_folder(
    remote: Remote, tmp_path: Path
) -> None:
    good = remote.head()
    assert good is not None
    a = remote.write({IMAGES: "api: r/api:2\n"}, "Bump api to 2")
    remote.write({"README.md": "docs\n"}, "Docs only")
    b = remote.write(
        {STACK: "services: {api: {}, web: {}}\n", IMAGES: "api: r/api:2\nweb: r/w:1\n"}, "Add web"
    )
    repo = _repo(remote, tmp_path)
    head = await repo.fetch()
    assert [c.sha for c in await repo.offending_commits(good, head.sha)] == [b, a]
    assert [c.sha for c in await repo.offending_commits(None, head.sha)] == [b]
    assert [c.sha for c in await repo.offending_commits("f" * 40, head.sha)] == [b]


async def test_revert_is_pushed_with_the_reason_and_only_once(
    remote: Remote, tmp_path: Path
) -> None:
    good = remote.head()
    bad = remote.write({IMAGES: "api: r/api:3\n"}, "Bump api to 3")
    repo = _repo(remote, tmp_path)
    head = await repo.fetch()
    commits = await repo.offending_commits(good, head.sha)
    commit = await repo.revert(commits, head, 'Revert "Bump api to 3"', "Reason: api: HTTP 500")
    assert commit is not None
    assert commit == remote.head()
    assert remote.show(IMAGES) == "api: r/api:1\n"
    message = remote.message()
    assert message.startswith('Revert "Bump api to 3"')
    assert "Reason: api: HTTP 500" in message
    assert f"This reverts commit {bad}." in message
    assert f"{REVERT_TRAILER}: {bad}" in message
    author = git(remote.bare, "log", "-1", "--format=%an <%ae>")
    assert author == "Driftless reconciler <reconciler@driftless.invalid>"
    # asked again (say after a crash), it finds its revert instead of making another
    assert await repo.find_revert(bad) == commit
    assert await repo.revert(commits, head, "again", "again") == commit
    assert len(remote.log()) == 3


class _RacingRepo(GitRepo):
    """The real adapter; the test pushes a commit right after the adapter's first fetch inside
    revert(), so its push meets a remote that moved (a real race, made deterministic)."""

    race: Remote | None = None
    fetches = 0

    def _git_fetch(self, repo):  # type: ignore[no-untyped-def]
        super()._git_fetch(repo)
        self.fetches += 1
        if self.race is not None and self.fetches == 2:
            self.race.write({"README.md": "meanwhile\n"}, "Someone pushed meanwhile")


async def test_revert_redoes_itself_when_the_remote_moved(remote: Remote, tmp_path: Path) -> None:
    good = remote.head()
    remote.write({IMAGES: "api: r/api:3\n"}, "Bump api to 3")
    repo = opened(
        _RacingRepo(
            GitConfig(url=remote.url, path="desired-state/test", push_retries=2),
            tmp_path / "state" / "checkout",
            Masker(),
        )
    )
    head = await repo.fetch()
    repo.race = remote
    commits = await repo.offending_commits(good, head.sha)
    commit = await repo.revert(commits, head, "Revert bump", "body")
    subjects = [line.split(" ", 1)[1] for line in remote.log()]
    assert subjects[:2] == ["Revert bump", "Someone pushed meanwhile"]
    assert commit == remote.head()
    assert remote.show("README.md") == "meanwhile\n"
    assert remote.show(IMAGES) == "api: r/api:1\n"


async def test_a_revert_that_does_not_apply_pushes_nothing(remote: Remote, tmp_path: Path) -> None:
    good = remote.head()
    remote.write({IMAGES: "api: r/api:3\n"}, "Bump api to 3")
    repo = _repo(remote, tmp_path)
    head = await repo.fetch()
    commits = await repo.offending_commits(good, head.sha)
    remote.write({IMAGES: "api: r/api:4\n"}, "Bump api to 4 (a human, meanwhile)")
    before = remote.log()
    with pytest.raises(RevertError, match=r"cannot revert .* cleanly") as info:
        await repo.revert(commits, head, "Revert", "body")
    assert "(conflicts in desired-state/test/images.yaml)" in str(info.value)
    assert "hint:" not in str(info.value)  # advice for a terminal user, not for a status page
    assert remote.log() == before
    # the checkout is usable afterwards
    assert (await repo.fetch()).sha == remote.head()


async def test_nothing_to_revert_when_a_human_already_did(remote: Remote, tmp_path: Path) -> None:
    good = remote.head()
    remote.write({IMAGES: "api: r/api:3\n"}, "Bump api to 3")
    repo = _repo(remote, tmp_path)
    head = await repo.fetch()
    commits = await repo.offending_commits(good, head.sha)
    remote.write({IMAGES: "api: r/api:1\n"}, "Back to 1 by hand")
    before = remote.log()
    assert await repo.revert(commits, head, "Revert", "body") is None
    assert remote.log() == before


async def test_fetch_errors_are_waiting_errors_without_credentials(tmp_path: Path) -> None:
    config = GitConfig(url="https://deploy:supersecret@127.0.0.1:9/nothing.git", timeout=10)
    repo = opened(GitRepo(config, tmp_path / "checkout", Masker()))
    with pytest.raises(GitError) as info:
        await repo.fetch()
    assert "supersecret" not in str(info.value)
    assert "https://***@127.0.0.1:9/nothing.git" in str(info.value)


async def test_https_token_comes_from_a_file_through_askpass(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok-123456\n")
    config = GitConfig(
        url="https://127.0.0.1:9/nothing.git", token_file=token, username="bot", timeout=10
    )
    repo = opened(GitRepo(config, tmp_path / "state" / "checkout", Masker()))
    with pytest.raises(GitError) as info:
        await repo.fetch()
    assert "tok-123456" not in str(info.value)
    askpass = tmp_path / "state" / "git-askpass.sh"
    env = {**os.environ, "DRIFTLESS_GIT_TOKEN_FILE": str(token), "DRIFTLESS_GIT_USERNAME": "bot"}
    ask = lambda prompt: subprocess.run(  # noqa: E731
        [str(askpass), prompt], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert ask("Username for 'https://127.0.0.1:9': ") == "bot"
    assert ask("Password for 'https://bot@127.0.0.1:9': ") == "tok-123456"
    assert "tok-123456" not in (tmp_path / "state" / "checkout" / ".git" / "config").read_text()
    assert "tok-123456" not in askpass.read_text()


async def test_revision_info_round_trips(remote: Remote, tmp_path: Path) -> None:
    info = await _repo(remote, tmp_path).fetch()
    assert isinstance(info, RevisionInfo)
    assert info.committed_at is not None
    assert info.committed_at.tzinfo is not None


async def test_a_revision_that_vanished_from_the_remote_is_reported(
    remote: Remote, tmp_path: Path
) -> None:
    from reconciler.errors import RevisionGone

    repo = _repo(remote, tmp_path)
    head = await repo.fetch()
    assert (await repo.checkout(head.sha)).sha == head.sha
    with pytest.raises(RevisionGone, match="no longer exists"):
        await repo.checkout("0123456789" * 4)
