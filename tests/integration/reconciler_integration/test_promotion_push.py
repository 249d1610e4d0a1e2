"""The promotion's commit with the real git adapter on a real bare repository, and its pull
request through the real forge adapter against the stand-in GitHub API on loopback
(``reconciler_support.forgeserver``: GitHub cannot be reached from here)."""

from __future__ import annotations

from pathlib import Path

from reconciler_support.forgeserver import StandInForge
from reconciler_support.gitrepo import Remote, git

from reconciler.adapters.forge import ForgeRequests
from reconciler.adapters.git_promote import PromotionRepo
from reconciler.config import ForgeConfig, GitConfig
from reconciler.forges import target
from reconciler.masking import Masker
from reconciler.promotion import TRAILER, branch

PROD = "desired-state/prod/images.yaml"


async def test_the_promotion_is_pushed_to_its_branch_once_and_proposed(tmp_path: Path) -> None:
    remote = Remote(tmp_path, "desired-state/test")
    remote.write({PROD: "web: r/web:1\n"}, "Add production")
    staged = remote.write({"desired-state/test/images.yaml": "web: r/web:2\n"}, "Bump web")
    config = GitConfig(url=remote.url, timeout=30)
    repo = PromotionRepo(config, tmp_path / "state" / "promotion", Masker())
    name = branch(staged)
    text = "web: r/web:2@sha256:" + "a" * 64 + "\n"
    message = f"Promote {staged[:12]}\n\nbody\n\n{TRAILER}: {staged}\n"
    pushed = await repo.push_branch(name, {PROD: text}, message, staged)
    assert git(remote.bare, "rev-parse", f"refs/heads/{name}") == pushed
    assert git(remote.bare, "show", f"{name}:{PROD}") + "\n" == text
    assert git(remote.bare, "rev-parse", f"{name}^") == remote.head()  # on top of main
    # again (a pass after a lost answer): the same commit, nothing pushed twice
    assert await repo.push_branch(name, {PROD: text}, message, staged) == pushed

    server = await StandInForge("github", "t0ken", lambda: {name}).start()
    try:
        token = tmp_path / "token"
        token.write_text("t0ken\n")
        forge_config = ForgeConfig(
            kind="github", api_url=server.api_url, repository="acme/shop", token_file=token
        )
        where = target("github", server.api_url, "acme/shop", remote.url)
        assert not isinstance(where, str)
        forge = ForgeRequests(where, forge_config, Masker())
        proposal = await forge.propose(name, "main", f"Promote {staged[:12]}", "body")
        assert proposal.opened
        [pull] = server.pulls
        assert (pull.head, pull.base) == (name, "main")
    finally:
        await server.close()
