"""The git port: what the engine relies on, run against the fake remote and the real adapter on
a real bare repository (``reconciler_support.gitrepo.Remote``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from reconciler_support.fakes import PROTECTED, FakeGit, FakeRemote
from reconciler_support.gitrepo import Remote, close_opened, opened

from reconciler.adapters.git import GitRepo
from reconciler.config import GitConfig
from reconciler.errors import BranchProtected, GitError, RevertError, RevisionGone
from reconciler.masking import Masker
from reconciler.ports import GitSource

FOLDER = "desired-state/test"
IMAGES = f"{FOLDER}/images.yaml"
STACK = f"{FOLDER}/stack.yml"


@dataclass
class Side:
    remote: Any  # FakeRemote or Remote: write, head, log, message, show, rewrite
    repo: GitSource
    cut: Any  # makes the remote unreachable
    protect: Any  # main refuses direct pushes, in GitHub's words


@pytest.fixture(params=["fake", "real"])
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    files = {STACK: "services: {api: {}}\n", IMAGES: "api: r/api:1\n"}
    checkout = tmp_path / "state" / "checkout"
    if request.param == "fake":
        fake = FakeRemote()
        fake.write(files, "Add the api")
        yield Side(
            fake,
            FakeGit(fake, checkout, FOLDER),
            lambda: setattr(fake, "unreachable", True),
            lambda: setattr(fake, "protected", True),
        )
        return
    real = Remote(tmp_path, FOLDER)
    real.write(files, "Add the api")
    config = GitConfig(url=real.url, path=FOLDER, push_retries=2, timeout=30)
    repo = opened(GitRepo(config, checkout, Masker()))
    refusal = [line.removeprefix("remote: ") for line in PROTECTED.splitlines()[:2]]
    yield Side(
        real, repo, lambda: real.bare.rename(tmp_path / "gone.git"), lambda: real.protect(*refusal)
    )
    close_opened()


async def test_fetch_checks_out_the_head(side: Side) -> None:
    head = await side.repo.fetch()
    assert head.sha == side.remote.head()
    assert head.subject == "Add the api"
    assert (side.repo.workdir / IMAGES).read_text() == "api: r/api:1\n"
    newer = side.remote.write({IMAGES: "api: r/api:2\n"}, "Bump api to 2")
    assert (await side.repo.fetch()).sha == newer
    assert (side.repo.workdir / IMAGES).read_text() == "api: r/api:2\n"


async def test_offending_commits_touch_the_folder_newest_first(side: Side) -> None:
    good = side.remote.head()
    one = side.remote.write({IMAGES: "api: r/api:2\n"}, "Bump api to 2")
    side.remote.write({"README.md": "hello\n"}, "Docs")
    two = side.remote.write({IMAGES: "api: r/api:3\n"}, "Bump api to 3")
    await side.repo.fetch()
    commits = await side.repo.offending_commits(good, two)
    assert [c.sha for c in commits] == [two, one]
    # no known good revision: only the last commit that touched the folder
    assert [c.sha for c in await side.repo.offending_commits(None, two)] == [two]


async def test_a_revert_is_pushed_once_and_found_again(side: Side) -> None:
    good = side.remote.head()
    bad = side.remote.write({IMAGES: "api: r/api:2\n"}, "Bump api to 2")
    head = await side.repo.fetch()
    commits = await side.repo.offending_commits(good, bad)
    revert = await side.repo.revert(commits, head, 'Revert "Bump api to 2"', "It failed.")
    assert revert is not None
    assert side.remote.head() == revert
    assert side.remote.show(IMAGES) == "api: r/api:1\n"
    message = side.remote.message()
    assert message.startswith('Revert "Bump api to 2"\n\nIt failed.')
    assert f"This reverts commit {bad}." in message
    assert message.endswith(f"Driftless-Revert-Of: {bad}")
    assert await side.repo.find_revert(bad) == revert
    # asked again (an agent that died before recording it): the same commit, nothing new
    assert await side.repo.revert(commits, head, "again", "again") == revert
    assert len(side.remote.log()) == 3


async def test_a_protected_branch_refuses_the_revert_which_goes_to_a_branch_once(
    side: Side,
) -> None:
    good = side.remote.head()
    bad = side.remote.write({IMAGES: "api: r/api:2\n"}, "Bump api to 2")
    side.protect()
    head = await side.repo.fetch()
    commits = await side.repo.offending_commits(good, bad)
    with pytest.raises(BranchProtected, match=r"main refuses direct pushes \(protected\): .*GH006"):
        await side.repo.revert(commits, head, 'Revert "Bump api to 2"', "It failed.")
    assert side.remote.head() == bad
    branch = f"driftless/revert-{bad[:12]}"
    proposed = await side.repo.propose(
        commits, head, 'Revert "Bump api to 2"', "It failed.", branch
    )
    assert proposed is not None
    message = side.remote.message(proposed)
    assert message.startswith('Revert "Bump api to 2"\n\nIt failed.')
    assert message.endswith(f"Driftless-Revert-Of: {bad}")
    assert side.remote.head() == bad  # main untouched
    assert await side.repo.find_revert(bad) is None  # not on main (yet)
    # asked again (an agent that died before recording it): the commit on the branch
    assert await side.repo.propose(commits, head, "again", "again", branch) == proposed


async def test_a_revert_that_conflicts_pushes_nothing(side: Side) -> None:
    good = side.remote.head()
    bad = side.remote.write({IMAGES: "api: r/api:2\n"}, "Bump api to 2")
    head = await side.repo.fetch()
    hotfix = side.remote.write({IMAGES: "api: r/api:4\n"}, "Hotfix")
    commits = await side.repo.offending_commits(good, bad)
    with pytest.raises(RevertError, match=r"cannot revert .* cleanly .*nothing was pushed"):
        await side.repo.revert(commits, head, "Revert", "body")
    assert side.remote.head() == hotfix


async def test_an_unreachable_remote_is_a_git_error(side: Side) -> None:
    await side.repo.fetch()
    side.cut()
    with pytest.raises(GitError, match="cannot fetch main"):
        await side.repo.fetch()


async def test_a_revision_rewritten_away_is_gone(side: Side) -> None:
    lost = side.remote.write({IMAGES: "api: r/api:2\n"}, "Bump api to 2")
    side.remote.rewrite(1)
    with pytest.raises(RevisionGone, match="no longer exists"):
        await side.repo.checkout(lost)


async def test_signatures_are_read_for_the_head_and_the_folders_commits_since(
    side: Side,
) -> None:
    first = (await side.repo.fetch()).sha
    bump = side.remote.write({IMAGES: "api: r/api:2\n"}, "Bump api to 2")
    side.remote.write({"README.md": "notes\n"}, "Notes")
    head = side.remote.write({IMAGES: "api: r/api:3\n"}, "Bump api to 3")
    await side.repo.fetch()
    (only,) = await side.repo.signatures(first, head, every=False)
    assert (only.sha, only.subject, only.status, only.good) == (head, "Bump api to 3", "N", False)
    found = await side.repo.signatures(first, head, every=True)
    assert [s.sha for s in found] == [head, bump]
    assert found[1].author == "Dev <dev@example.org>"


async def test_commits_to_the_base_a_stack_extends_count_with_also(side: Side) -> None:
    good = side.remote.head()
    base = side.remote.write({"desired-state/base/stack.yml": "services: {}\n"}, "Change the base")
    side.remote.write({"README.md": "notes\n"}, "Notes")
    await side.repo.fetch()
    head = side.remote.head()
    assert await side.repo.offending_commits(good, head) == ()
    found = await side.repo.offending_commits(good, head, also=("desired-state/base",))
    assert [c.sha for c in found] == [base]
    (signature, by_base) = await side.repo.signatures(
        good, head, every=True, also=("desired-state/base",)
    )
    assert (signature.sha, by_base.sha) == (head, base)
