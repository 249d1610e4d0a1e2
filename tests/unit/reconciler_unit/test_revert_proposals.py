"""Reverts through a protected branch, pass by pass: the agent as the daemon builds it with fakes
at its ports (``reconciler_support.fakes``: a Swarm, a git remote whose ``main`` refuses direct
pushes as GitHub does, and a GitHub that holds pull requests). The revert path is what is under
test; the real git adapter and the real forge adapter (against a stand-in GitHub/GitLab on
loopback) are tested in ``tests/integration/reconciler_integration/test_revert_proposals.py``."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from reconciler_support.fakes import Killed, kill
from reconciler_support.world import World, image

from reconciler.cli.status import status_text
from reconciler.decisions import ExitCode, exit_code
from reconciler.errors import ForgeError, ForgeUnavailable, Reason
from reconciler.events import RevertPushed
from reconciler.forges import revert_branch
from reconciler.masking import Masker
from reconciler.models import PassResult
from reconciler.notify.message import build
from reconciler.status import ConditionType
from reconciler.web.headline import headline
from reconciler.web.page import render_content
from reconciler.web.settings import Site
from reconciler.web.views import document

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def world(tmp_path: Path) -> World:
    world = World(tmp_path)
    first = await world.sync()
    assert first.result == PassResult.SUCCESS, first.message
    world.notified.events.clear()
    return world


def _bad_release(world: World) -> str:
    """A release whose web tasks crash: it fails its checks, is rolled back and reverted."""
    world.swarm.crashing.add(image("web", "3"))
    return world.release(web="3")


async def test_a_protected_main_gets_the_revert_as_a_pull_request(world: World) -> None:
    forge = world.protect("auto")
    bad = _bad_release(world)
    out = await world.sync()
    # the stack is rolled back, and the pass is not stalled: the pull request is the revert
    assert (out.result, out.reason) == (PassResult.ROLLED_BACK, Reason.HEALTH_CHECK_FAILED)
    assert exit_code(out) == ExitCode.ROLLED_BACK
    assert world.live() == "1"
    assert "revert proposed in https://github.test/acme/shop/pull/1" in out.message
    assert not world.status().is_true(ConditionType.STALLED)
    # main still holds the bad revision; the revert waits on its own branch
    assert world.remote.head() == bad
    assert not world.reverts()
    branch = revert_branch(bad)
    pushed = world.remote.branches[branch]
    assert f"Driftless-Revert-Of: {bad}" in pushed.message
    [request] = forge.opened
    assert (request.branch, request.base) == (branch, "main")
    assert request.title == 'Revert "Bump web to 3 and api to 1"'
    assert "Reason: HealthCheckFailed" in request.body
    assert f"`main` refuses direct pushes (protected), so it waits on `{branch}`" in request.body
    # recorded as the revert, and announced as proposed
    [entry] = world.status().reverts
    assert (entry.commit, entry.proposal) == (pushed.sha, request.request.url)
    assert world.events() == ["deploy_failed", "revert_pushed"]
    announced = world.notified.events[-1]
    assert "proposed in https://github.test/acme/shop/pull/1" in announced.summary()
    assert not world.journal_left()


async def test_until_it_is_merged_the_revision_is_refused_quietly_then_ready(world: World) -> None:
    forge = world.protect("auto")
    bad = _bad_release(world)
    await world.sync()
    world.notified.events.clear()
    for _ in range(2):
        waiting = await world.sync()
        assert (waiting.result, waiting.reason) == (PassResult.REFUSED, Reason.REVERT_PROPOSED)
        assert "revert proposed in https://github.test/acme/shop/pull/1" in waiting.message
        assert world.live() == "1"
    status = world.status()
    ready = status.condition(ConditionType.READY)
    assert ready is not None
    assert (ready.status, ready.reason) == (False, Reason.REVERT_PROPOSED)
    assert not status.is_true(ConditionType.STALLED)
    assert status.history[0].count == 2
    assert world.events() == []  # no alert beyond the failed deploy's
    head = headline(status.to_dict())  # the status page's first line: not a failure
    assert (head.label, head.tone, head.reason) == ("Revert proposed", "warn", "RevertProposed")
    assert len(forge.opened) == 1
    # the forge merges the pull request: the branch renders to what runs, Ready again
    world.remote.merge(revert_branch(bad))
    after = await world.sync()
    assert (after.result, after.reason) == (PassResult.NOOP, Reason.IN_SYNC)
    assert world.events() == ["recovered"]
    assert len(world.reverts()) == 1


async def test_by_default_a_protected_main_stalls_with_the_reason_and_the_way_out(
    world: World,
) -> None:
    world.remote.protected = True  # git.revert_via stays push
    _bad_release(world)
    out = await world.sync()
    assert out.result == PassResult.ROLLED_BACK
    assert out.stalled_reason == Reason.REVERT_FAILED
    assert exit_code(out) == ExitCode.STALLED
    assert "main refuses direct pushes (protected)" in out.message
    assert "GH006: Protected branch update failed" in out.message
    assert "set git.revert_via to auto" in out.message
    assert world.live() == "1"
    assert not world.remote.branches
    assert world.events() == ["deploy_failed", "stalled"]


async def test_pull_request_mode_proposes_without_pushing_to_main(world: World) -> None:
    forge = world.protect("pull_request", auto_merge=True)
    world.remote.protected = False  # main would take the push: it is not even tried
    bad = _bad_release(world)
    out = await world.sync()
    assert "pull/1 (auto-merge requested)" in out.message
    assert world.remote.head() == bad
    [request] = forge.opened
    assert request.auto_merge
    assert "reverts go through pull requests here (`git.revert_via: pull_request`)" in request.body


@pytest.mark.parametrize(("on", "call"), [("git", "after propose"), ("forge", "after open")])
async def test_a_kill_while_proposing_never_opens_a_second_pull_request(
    world: World, on: str, call: str
) -> None:
    forge = world.protect("auto")
    bad = _bad_release(world)
    (world.git.on if on == "git" else forge.on)[call] = kill(call)
    with pytest.raises(Killed):
        await world.sync()
    journal = json.loads((world.config.state_dir / "journal.json").read_text())
    # killed between the push of the branch and the journal: the remote's branch says it
    assert journal["revert_branch"] == (revert_branch(bad) if on == "forge" else None)
    assert journal["revert_proposal"] is None
    assert revert_branch(bad) in world.remote.branches
    out = await world.sync()
    assert out.trigger == "recovery"
    assert out.result == PassResult.ROLLED_BACK, out.message
    assert "revert proposed in https://github.test/acme/shop/pull/1" in out.message
    assert len(forge.opened) == 1
    assert list(world.remote.branches) == [revert_branch(bad)]
    assert world.status().reverts[0].proposal.endswith("/pull/1")
    assert not world.journal_left()


async def test_a_forge_that_is_down_gets_the_pull_request_from_the_next_pass(
    world: World,
) -> None:
    forge = world.protect("auto")
    _bad_release(world)
    forge.failing = ForgeUnavailable("cannot open the pull request: GitHub answered HTTP 502")
    out = await world.sync()
    assert out.result == PassResult.ROLLED_BACK
    assert not out.stalled
    assert "revert pending (ForgeUnavailable): cannot open the pull request" in out.message
    assert world.journal_left()  # the revert is finished by the next pass
    assert world.live() == "1"
    forge.failing = None
    again = await world.sync()
    assert again.trigger == "recovery"
    assert "revert proposed in" in again.message
    assert len(forge.opened) == 1
    assert (await world.sync()).reason == Reason.REVERT_PROPOSED


async def test_a_forge_that_refuses_the_token_stalls_with_its_reason(world: World) -> None:
    forge = world.protect("auto")
    bad = _bad_release(world)
    forge.failing = ForgeError(
        "cannot open the pull request for driftless/revert-x: GitHub refused the token of "
        "forge.token_file (HTTP 401: Bad credentials)"
    )
    out = await world.sync()
    assert out.stalled_reason == Reason.REVERT_FAILED
    assert "refused the token of forge.token_file (HTTP 401: Bad credentials)" in out.message
    assert world.live() == "1"
    assert revert_branch(bad) in world.remote.branches  # for a person to open the request
    assert world.events() == ["deploy_failed", "stalled"]
    assert not world.journal_left()
    # the revision stays quarantined: the next pass changes nothing
    again = await world.sync()
    assert (again.result, again.reason) == (PassResult.REFUSED, Reason.QUARANTINED)
    assert world.live() == "1"


async def test_the_status_page_the_cli_and_chat_show_where_the_revert_waits(
    world: World,
) -> None:
    world.protect("auto")
    _bad_release(world)
    await world.sync()
    status = world.status()
    url = "https://github.test/acme/shop/pull/1"
    site = Site.from_config(world.config)
    schema = json.loads((ROOT / "reconciler/web/static/status.schema.json").read_text())
    served = document(status, site, Masker())
    jsonschema.validate(served, schema)  # what /api/status serves
    assert served["reverts"][0]["proposal"] == url
    page = render_content(status.to_dict(), site, world.clock.now(), can_act=False)
    assert f'proposed in <a href="{url}" class="proposal">' in page
    assert f"(proposed in {url})" in status_text(status, resuming=False)
    event = world.notified.events[-1]
    assert isinstance(event, RevertPushed)
    said = build(event, site.repo, Masker().mask)
    assert said.title.startswith("Revert of ")
    assert "proposed in a pull request" in said.title
    assert ("pull request", url) in [(link.text, link.url) for link in said.links]
