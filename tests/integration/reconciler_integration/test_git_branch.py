"""The branch and the sub-folder come from the config: against a real bare repository whose
``main`` and ``deploy`` branches differ, the agent follows only its branch, blames only commits
that touch its folder, and pushes its revert to its branch alone."""

from __future__ import annotations

from pathlib import Path

from reconciler_support.gitrepo import Remote, git, opened

from reconciler.adapters.git import GitRepo
from reconciler.config import GitConfig
from reconciler.masking import Masker
from reconciler.models import RevisionInfo

FOLDER = "desired-state/staging"
IMAGES = f"{FOLDER}/images.yaml"


def _push_deploy(remote: Remote, files: dict[str, str], message: str) -> str:
    """Commit on the developer's ``deploy`` branch and push it."""
    sha = remote.write(files, message, push=False)
    git(remote.work, "push", "-q", "origin", "HEAD:deploy")
    return sha


async def test_the_configured_branch_and_folder_are_followed(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    remote.write(
        {IMAGES: "api: r/api:1\n", "desired-state/production/images.yaml": "api: r/api:1\n"},
        "Start",
    )
    git(remote.work, "checkout", "-q", "-b", "deploy")
    good = _push_deploy(remote, {IMAGES: "api: r/api:2\n"}, "Staging: api to 2")
    git(remote.work, "checkout", "-q", "main")
    on_main = remote.write({IMAGES: "api: r/api:9\n"}, "Main moves on")

    config = GitConfig(url=remote.url, branch="deploy", path=FOLDER, push_retries=1, timeout=30)
    repo = opened(GitRepo(config, tmp_path / "state" / "checkout", Masker()))
    head = await repo.fetch()
    assert head.sha == good  # not main's head
    assert head.sha != on_main
    assert (repo.workdir / IMAGES).read_text() == "api: r/api:2\n"

    git(remote.work, "checkout", "-q", "deploy")
    other = _push_deploy(
        remote, {"desired-state/production/images.yaml": "api: r/api:3\n"}, "Production only"
    )
    bad = _push_deploy(remote, {IMAGES: "api: r/api:3\n"}, "Staging: api to 3")
    head = await repo.fetch()
    assert head.sha == bad
    # only the commit under the configured folder is to blame
    blamed = await repo.offending_commits(good, bad)
    assert [c.sha for c in blamed] == [bad]
    assert other not in {c.sha for c in blamed}

    failed = RevisionInfo(bad, "Staging: api to 3")
    commit = await repo.revert(blamed, failed, 'Revert "Staging: api to 3"', "checks failed")
    assert commit is not None
    assert git(remote.bare, "rev-parse", "refs/heads/deploy") == commit
    assert git(remote.bare, "show", f"deploy:{IMAGES}") == "api: r/api:2"
    # the other branch is untouched
    assert git(remote.bare, "rev-parse", "refs/heads/main") == on_main
    assert git(remote.bare, "show", f"main:{IMAGES}") == "api: r/api:9"
