"""Promotion: a revision applied and verified in this environment is proposed to the next one by
digest, in a pull request that carries the verification; a failed one never is. Whole passes on
the agent with fakes at its ports (``reconciler_support.world``: the remote, a fake GitHub and
the promotion's branch push); the real git push is in tests/integration and the real forge API
(a stand-in on loopback) in test_revert_proposals."""

from __future__ import annotations

from pathlib import Path

import pytest
from reconciler_support.world import World, image

from reconciler.errors import ForgeUnavailable
from reconciler.models import PassResult
from reconciler.promotion import TRAILER, branch, promoted_images

PROD = "desired-state/prod"
PROD_IMAGES = f"""# production's images: promoted from staging
web: {image("web", "1")}
api: {image("api", "1")}  # the API
worker: registry.test:5000/shop/worker:7
"""


@pytest.fixture
async def world(tmp_path: Path) -> World:
    world = World(tmp_path)
    forge = world.promote_to(PROD, PROD_IMAGES)
    first = await world.sync()
    assert first.result == PassResult.SUCCESS, first.message
    # production names tags; what was verified here is pinned: the first deploy is proposed too
    assert len(forge.opened) == 1
    forge.opened.clear()
    return world


def test_the_next_environments_images_are_rewritten_by_digest_comments_kept() -> None:
    running = {"web": "r/web:2@sha256:" + "a" * 64, "api": "r/api:1@sha256:" + "b" * 64}
    text, changed = promoted_images(
        "# comment\nweb: r/web:1\napi: 'r/api:1@sha256:" + "b" * 64 + "'  # pinned\nx: r/x:1\n",
        running,
    )
    assert text == (
        "# comment\nweb: r/web:2@sha256:" + "a" * 64 + "\napi: 'r/api:1@sha256:" + "b" * 64
        + "'  # pinned\nx: r/x:1\n"
    )  # fmt: skip
    assert changed == {"web": running["web"]}


async def test_a_verified_release_is_proposed_to_production_by_digest(world: World) -> None:
    forge = world.forge
    assert forge is not None
    bump = world.release(web="2")
    assert (await world.sync()).result == PassResult.SUCCESS
    [request] = forge.opened  # type: ignore[attr-defined]
    assert request.branch == branch(bump)
    assert request.title == f"Promote {bump[:12]} from test to production"
    web = image("web", "2")
    pinned = f"{web}@{world.swarm.digest(web)}"
    assert f"- web: {pinned}" in request.body
    assert "Verification in test:" in request.body
    assert f"{TRAILER}: {bump}" in request.body
    proposed = world.remote.branches[branch(bump)].files[f"{PROD}/images.yaml"]
    assert f"web: {pinned}\n" in proposed
    assert (
        f"api: {image('api', '1')}@{world.swarm.digest(image('api', '1'))}  # the API" in proposed
    )
    assert "worker: registry.test:5000/shop/worker:7" in proposed
    promotion = world.status().promotion
    assert promotion is not None
    assert promotion.url == request.request.url
    from reconciler.web.page import render_content
    from reconciler.web.settings import Site

    page = render_content(
        world.status().to_dict(), Site.from_config(world.config), world.clock.now(), can_act=False
    )
    promoted = page.split('id="promotion"', 1)[1].split("</div>", 3)
    assert bump[:12] in "".join(promoted)
    assert f'href="{request.request.url}"' in page
    # the next passes propose nothing again
    await world.sync()
    assert len(forge.opened) == 1  # type: ignore[attr-defined]


async def test_a_release_that_failed_here_is_never_proposed(world: World) -> None:
    forge = world.forge
    assert forge is not None
    world.swarm.crashing.add(image("web", "3"))
    world.release(web="3")
    assert (await world.sync()).result == PassResult.ROLLED_BACK
    assert (await world.sync()).result == PassResult.NOOP  # the revert, in sync
    assert forge.opened == []  # type: ignore[attr-defined]
    assert not any("web:3" in c.message for c in world.remote.branches.values())


async def test_a_forge_that_is_down_delays_the_promotion_to_a_later_pass(world: World) -> None:
    forge = world.forge
    assert forge is not None
    forge.failing = ForgeUnavailable("GitHub's API answers 502")  # type: ignore[attr-defined]
    bump = world.release(web="2")
    out = await world.sync()
    assert out.result == PassResult.SUCCESS  # the staging pass itself is not failed by it
    assert forge.opened == []  # type: ignore[attr-defined]
    promotion = world.status().promotion
    assert promotion is None or promotion.revision.sha != bump
    forge.failing = None  # type: ignore[attr-defined]
    await world.sync()
    [request] = forge.opened  # type: ignore[attr-defined]
    assert request.branch == branch(bump)


async def test_without_a_pull_request_the_branch_is_pushed_for_a_person_to_merge(
    world: World,
) -> None:
    # promote.pull_request: false (no forge, e.g. a plain git server): the same branch, no request
    forge = world.forge
    assert forge is not None
    world.configure(promote={"path": PROD, "environment": "production", "pull_request": False})
    world.forge = None
    bump = world.release(web="2")
    assert (await world.sync()).result == PassResult.SUCCESS
    assert forge.opened == []  # type: ignore[attr-defined]
    web = image("web", "2")
    proposed = world.remote.branches[branch(bump)].files[f"{PROD}/images.yaml"]
    assert f"web: {web}@{world.swarm.digest(web)}\n" in proposed
    promotion = world.status().promotion
    assert promotion is not None
    assert (promotion.url, promotion.branch) == ("", branch(bump))
    from reconciler.web.page import render_content
    from reconciler.web.settings import Site

    page = render_content(
        world.status().to_dict(), Site.from_config(world.config), world.clock.now(), can_act=False
    )
    assert f"branch {branch(bump)}: merge it to promote" in page
