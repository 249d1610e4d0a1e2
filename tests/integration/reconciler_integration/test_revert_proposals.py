"""Reverts through a protected branch with the real adapters: the git adapter on a real bare
repository whose ``pre-receive`` hook refuses pushes to ``main`` in GitHub's (or GitLab's) own
words and takes other branches, and the forge adapter against a stand-in GitHub / GitLab API on
loopback (``reconciler_support.forgeserver``: GitHub and GitLab cannot be reached from here; the
stand-in implements the endpoints the agent calls, with the request shapes of their API
documentation). The Swarm, the HTTP checks and the clock are the fakes of
``reconciler_support.fakes``: the revert path is what is under test, and no Docker is needed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from loguru import logger
from reconciler_support.forgeserver import StandInForge
from reconciler_support.gitrepo import Remote, git, opened
from reconciler_support.world import (
    ANALYSIS_FILE,
    ANALYSIS_YML,
    IMAGES_FILE,
    STACK_FILE,
    STACK_YML,
    World,
    image,
    images_yaml,
)

from reconciler.adapters.forge import ForgeRequests
from reconciler.adapters.git import GitRepo
from reconciler.config import ForgeConfig
from reconciler.decisions import ExitCode, exit_code
from reconciler.errors import ForgeError, ForgeUnavailable, Reason
from reconciler.forges import revert_branch, target
from reconciler.masking import Masker
from reconciler.models import PassResult
from reconciler.status import ConditionType

TOKEN = "ghp_StandInToken0123456789abcdefABCDEF"
GITHUB_REFUSAL = (
    "error: GH006: Protected branch update failed for refs/heads/main.",
    "error: Changes must be made through a pull request.",
)
GITLAB_REFUSAL = (
    "GitLab: You are not allowed to push code to protected branches on this project.",
)


class ForgeWorld(World):
    """The world of ``reconciler_support.world`` with a real bare repository as the remote, the
    real git adapter, and the real forge adapter talking to ``server``."""

    def __init__(self, root: Path, server: StandInForge, *, auto_merge: bool) -> None:
        super().__init__(root)
        (root / "git").mkdir()
        self.remote = Remote(root / "git", "desired-state/test")  # type: ignore[assignment]
        files = {STACK_FILE: STACK_YML, IMAGES_FILE: images_yaml(), ANALYSIS_FILE: ANALYSIS_YML}
        self.remote.write(files, "Deploy at 1")
        token_file = root / "forge-token"
        token_file.write_text(TOKEN + "\n")
        forge = ForgeConfig(
            kind=server.kind,
            api_url=server.api_url,
            repository=server.repository,
            token_file=token_file,
            auto_merge=auto_merge,
        )
        git_config = replace(self.config.git, url=self.remote.url, revert_via="auto", timeout=30)
        self.config = replace(self.config, git=git_config, forge=forge)
        self.git = opened(GitRepo(git_config, self.config.checkout_dir, self.masker))  # type: ignore[assignment]
        where = target(forge.kind, forge.api_url, forge.repository, git_config.url)
        assert not isinstance(where, str)
        self.forge = ForgeRequests(where, forge, self.masker)

    def reverts(self) -> list[str]:
        """Revert commits on ``main``."""
        bare = self.remote.bare  # type: ignore[attr-defined]
        found = git(bare, "log", "main", "--format=%H", "-F", "--grep=Driftless-Revert-Of:")
        return found.split()


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Every log message the agent writes, before any masking."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message}")
    yield lines
    logger.remove(sink)


async def _world(tmp_path: Path, kind: str, *, auto_merge: bool = True, token: str = TOKEN):
    remote_branches: list[Remote] = []
    server = StandInForge(kind, token, lambda: remote_branches[0].branches())
    await server.start()
    world = ForgeWorld(tmp_path, server, auto_merge=auto_merge)
    remote_branches.append(world.remote)  # type: ignore[arg-type]
    first = await world.sync()
    assert first.result == PassResult.SUCCESS, first.message
    world.notified.events.clear()
    return world, server


@pytest.fixture
async def github(tmp_path: Path) -> AsyncIterator[tuple[ForgeWorld, StandInForge]]:
    world, server = await _world(tmp_path, "github")
    yield world, server
    await server.close()


@pytest.fixture
async def gitlab(tmp_path: Path) -> AsyncIterator[tuple[ForgeWorld, StandInForge]]:
    world, server = await _world(tmp_path, "gitlab")
    yield world, server
    await server.close()


def _bad_release(world: World, refusal: tuple[str, ...]) -> str:
    world.swarm.crashing.add(image("web", "3"))
    bad = world.release(web="3")
    world.remote.protect(*refusal)  # type: ignore[attr-defined]
    return bad


async def test_github_protected_main_gets_one_pull_request_with_the_reason(
    github: tuple[ForgeWorld, StandInForge],
) -> None:
    world, server = github
    bad = _bad_release(world, GITHUB_REFUSAL)
    out = await world.sync()
    assert (out.result, out.reason) == (PassResult.ROLLED_BACK, Reason.HEALTH_CHECK_FAILED)
    assert not out.stalled
    assert exit_code(out) == ExitCode.ROLLED_BACK
    assert world.live() == "1"
    url = "https://github.com/acme/shop/pull/1"
    assert f"revert proposed in {url} (auto-merge requested)" in out.message
    # git: main refused the push and still holds the bad revision; the revert is on its branch
    branch = revert_branch(bad)
    assert world.remote.head() == bad
    assert branch in world.remote.branches()
    message = world.remote.message(branch)
    assert message.startswith('Revert "Bump web to 3 and api to 1"')
    assert f"Driftless-Revert-Of: {bad}" in message
    # the stand-in GitHub: looked for an open one, opened one, asked for auto-merge
    [listing] = server.to("GET", "/pulls")
    assert listing.query == {"head": f"acme:{branch}", "base": "main", "state": "open"}
    [create] = server.to("POST", "/pulls")
    assert sorted(create.body) == ["base", "body", "head", "title"]
    assert (create.body["head"], create.body["base"]) == (branch, "main")
    assert create.body["title"] == 'Revert "Bump web to 3 and api to 1"'
    assert "Reason: HealthCheckFailed: web: 3 tasks of the new spec failed" in create.body["body"]
    assert create.headers["Authorization"] == f"Bearer {TOKEN}"
    assert create.headers["X-GitHub-Api-Version"] == "2022-11-28"
    [mutation] = server.to("POST", "/graphql")
    [pull] = server.pulls
    assert mutation.body["variables"] == {"pullRequestId": pull.node_id, "mergeMethod": "MERGE"}
    assert pull.auto_merge == "MERGE"
    # the status and the announcement show where the revert waits
    assert world.status().reverts[0].proposal == url
    assert world.events() == ["deploy_failed", "revert_pushed"]
    # the next passes refuse the quarantined head quietly, and open nothing more
    waiting = await world.sync()
    assert (waiting.result, waiting.reason) == (PassResult.REFUSED, Reason.REVERT_PROPOSED)
    assert f"revert proposed in {url}" in waiting.message
    assert not world.status().is_true(ConditionType.STALLED)
    assert len(server.to("POST", "/pulls")) == 1
    # GitHub merges it (auto-merge, checks green): in sync, Ready, the revert once on main
    world.remote.merge(branch)  # type: ignore[attr-defined]
    merged = await world.sync()
    assert (merged.result, merged.reason) == (PassResult.NOOP, Reason.IN_SYNC)
    assert world.events()[-1] == "recovered"
    assert len(world.reverts()) == 1


async def test_an_answer_lost_after_github_opened_the_pull_request_opens_no_second(
    github: tuple[ForgeWorld, StandInForge],
) -> None:
    world, server = github
    _bad_release(world, GITHUB_REFUSAL)
    server.lose_answer("POST")  # GitHub opened it; the gateway timed out on the answer
    out = await world.sync()
    assert out.result == PassResult.ROLLED_BACK
    assert "revert proposed" not in out.message
    assert world.journal_left()  # the revert is finished by the next pass
    again = await world.sync()
    assert again.trigger == "recovery"
    assert "revert proposed in https://github.com/acme/shop/pull/1" in again.message
    assert len(server.pulls) == 1
    assert len(server.to("POST", "/pulls")) == 1  # found by the listing, not opened again
    assert not world.journal_left()


async def test_a_token_github_refuses_is_a_clear_stall_that_shows_no_secret(
    tmp_path: Path, logged: list[str]
) -> None:
    world, server = await _world(tmp_path, "github", token="ghp_TheOneGitHubKnows0123456789")
    try:
        bad = _bad_release(world, GITHUB_REFUSAL)
        out = await world.sync()
    finally:
        await server.close()
    assert out.stalled_reason == Reason.REVERT_FAILED
    assert exit_code(out) == ExitCode.STALLED
    words = "GitHub refused the token of forge.token_file (HTTP 401: Bad credentials)"
    assert words in out.message
    assert world.live() == "1"  # rolled back; nothing more touched
    assert server.pulls == []
    assert revert_branch(bad) in world.remote.branches()  # for a person to open the request
    assert world.events() == ["deploy_failed", "stalled"]
    assert words in world.notified.events[-1].summary()
    shown = [
        out.message,
        out.detail,
        *out.problems,
        (world.config.state_dir / "status.json").read_text(),
        *(json.dumps(e.to_dict(), default=str) for e in world.notified.events),
        *logged,
    ]
    assert [line for line in logged if words in line]  # the log says it too
    assert not [text for text in shown if TOKEN in text]


async def test_gitlab_protected_main_gets_one_merge_request(
    gitlab: tuple[ForgeWorld, StandInForge],
) -> None:
    world, server = gitlab
    bad = _bad_release(world, GITLAB_REFUSAL)
    server.fail((200, []), method="GET")  # the listing misses it: GitLab's 409 says it exists
    out = await world.sync()
    assert not out.stalled, out.message
    url = "https://gitlab.com/acme/shop/-/merge_requests/1"
    assert f"revert proposed in {url} (auto-merge requested)" in out.message
    branch = revert_branch(bad)
    assert world.remote.head() == bad
    [create] = server.to("POST", "/merge_requests")
    assert create.path == "/api/v4/projects/acme%2Fshop/merge_requests"
    assert create.headers["PRIVATE-TOKEN"] == TOKEN
    assert create.body["source_branch"] == branch
    assert create.body["target_branch"] == "main"
    assert create.body["remove_source_branch"] is True
    assert "Reason: HealthCheckFailed" in create.body["description"]
    [merge] = server.to("PUT", "/merge")
    assert merge.path == "/api/v4/projects/acme%2Fshop/merge_requests/1/merge"
    assert merge.body == {"auto_merge": True, "merge_when_pipeline_succeeds": True}
    # a pass that runs it again (an earlier run's answer lost): GitLab's 409, the same request
    server.fail((200, []), method="GET")
    again = await world.forge.propose(branch, "main", "Revert", "again")  # type: ignore[union-attr]
    assert (again.request.url, again.opened) == (url, False)
    assert len(server.pulls) == 1


async def test_a_forge_that_is_down_or_refuses_is_named_and_translated(tmp_path: Path) -> None:
    """The adapter alone: what each kind of answer becomes."""
    server = await StandInForge("github", TOKEN, lambda: {"driftless/revert-abc"}).start()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    config = ForgeConfig(kind="github", api_url=server.api_url, token_file=token_file, timeout=5)
    where = target("github", server.api_url, "acme/shop", "")
    assert not isinstance(where, str)
    forge = ForgeRequests(where, config, Masker())
    try:
        server.fail(500, method="GET")
        with pytest.raises(ForgeUnavailable, match=r"GitHub at http://127.0.0.1:\d+ HTTP 500"):
            await forge.propose("driftless/revert-abc", "main", "Revert", "body")
        invalid = {
            "message": "Validation Failed",
            "errors": [{"resource": "PullRequest", "field": "base", "code": "invalid"}],
        }
        server.fail((422, invalid), method="POST")
        with pytest.raises(ForgeError, match="refused it \\(HTTP 422: Validation Failed; base"):
            await forge.propose("driftless/revert-abc", "nope", "Revert", "body")
        server.fail((403, {"message": "Resource not accessible by personal access token"}))
        with pytest.raises(ForgeError, match="Pull requests: write"):
            await forge.propose("driftless/revert-abc", "main", "Revert", "body")
        opened = await forge.propose("driftless/revert-abc", "main", "Revert", "body")
        assert opened.opened
        assert opened.auto_merge == ""  # not asked
    finally:
        await server.close()
    with pytest.raises(ForgeUnavailable, match="unreachable"):
        await forge.propose("driftless/revert-abc", "main", "Revert", "body")


def test_the_hook_refuses_main_with_githubs_words_and_takes_other_branches(tmp_path: Path) -> None:
    """The stand-in for GitHub's protection itself: what a developer's push would see."""
    remote = Remote(tmp_path)
    remote.write({"README.md": "hello\n"}, "First")
    remote.protect(*GITHUB_REFUSAL)
    (remote.work / "README.md").write_text("changed\n")
    git(remote.work, "commit", "-qam", "Change")
    refused = subprocess.run(
        ["git", "push", "origin", "HEAD:main"], cwd=remote.work, capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "remote: error: GH006: Protected branch update failed" in refused.stderr
    assert "pre-receive hook declined" in refused.stderr
    git(remote.work, "push", "-q", "origin", "HEAD:refs/heads/feature")
    assert "feature" in remote.branches()
