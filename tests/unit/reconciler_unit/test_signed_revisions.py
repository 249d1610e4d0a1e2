"""Signed revisions (``git.verify``) through the whole pass, in the agent as the daemon builds it
with fakes at its ports (``reconciler_support.fakes``: the fake remote says which commits carry a
good signature by an allowed key; git's own verification of real keys is proven in
``tests/integration/reconciler_integration/test_git_signatures.py``). What a person on call sees:
the refusal with the commit and the reason, nothing live touched, one alert, and the agent's own
signed reverts trusted by the next pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from reconciler_support.world import World

from reconciler.config import VerifyConfig
from reconciler.decisions import ExitCode, exit_code
from reconciler.errors import Reason
from reconciler.models import PassResult
from reconciler.signatures import Signature, VerifyMode, problem, verdict
from reconciler.status import ConditionType
from reconciler.web.page import render_content
from reconciler.web.settings import Site


def _verify(world: World, mode: VerifyMode) -> None:
    world.configure(git={"verify": VerifyConfig(mode)})
    world.remote.revert_signer = "Driftless reconciler (key SHA256:agent)"


@pytest.fixture
async def world(tmp_path: Path) -> World:
    world = World(tmp_path)
    world.remote.signed[world.remote.head() or ""] = "Alice <alice@example.org>"
    first = await world.sync()
    assert first.result == PassResult.SUCCESS, first.message
    world.notified.events.clear()
    return world


async def test_an_unsigned_release_is_refused_and_nothing_live_changes(world: World) -> None:
    _verify(world, VerifyMode.HEAD)
    unsigned = world.release(web="2")
    out = await world.sync()
    assert (out.result, out.reason) == (PassResult.REFUSED, Reason.SIGNATURE_REFUSED)
    assert exit_code(out) == ExitCode.REFUSED
    assert out.message == (
        f"revision {unsigned[:12]} refused: commit {unsigned[:12]} ('Bump web to 2 and api to 1'"
        " by Dev <dev@example.org>) is not signed; push a commit signed by an allowed key"
    )
    assert world.live("web") == "1"
    assert world.reverts() == []  # not the revision's failure: nothing to revert
    ready = world.status().condition(ConditionType.READY)
    assert ready is not None
    assert ready.reason == Reason.SIGNATURE_REFUSED
    assert world.events() == ["revision_refused"]
    again = await world.sync()  # refused again, announced once
    assert again.reason == Reason.SIGNATURE_REFUSED
    assert world.events() == ["revision_refused"]


async def test_a_signed_release_is_applied_and_its_signer_recorded(world: World) -> None:
    _verify(world, VerifyMode.HEAD)
    world.remote.signed[world.release(web="2")] = "Bob <bob@example.org>"
    out = await world.sync()
    assert out.result == PassResult.SUCCESS, out.message
    assert world.live("web") == "2"
    status = world.status()
    assert status.last_applied is not None
    assert status.last_applied.signed_by == "Bob <bob@example.org>"
    page = render_content(
        status.to_dict(), Site.from_config(world.config), world.clock.now(), can_act=False
    )
    assert "signed by Bob &lt;bob@example.org&gt;" in page


async def test_mode_all_refuses_an_unsigned_change_under_a_signed_one(world: World) -> None:
    """A signed commit on top carries the unsigned change in: mode head lets it through, mode all
    names the unsigned commit."""
    sneaked = world.release(web="2", subject="Sneak web 2 in")
    world.remote.signed[world.release(web="2", api="2")] = "Bob <bob@example.org>"
    _verify(world, VerifyMode.ALL)
    out = await world.sync()
    assert out.reason == Reason.SIGNATURE_REFUSED
    assert f"commit {sneaked[:12]} ('Sneak web 2 in' by Dev <dev@example.org>) is not signed" in (
        out.message
    )
    assert world.live("web") == "1"
    _verify(world, VerifyMode.HEAD)
    assert (await world.sync()).result == PassResult.SUCCESS
    assert world.live("web") == "2"


async def test_the_agents_signed_revert_passes_the_next_check(world: World) -> None:
    _verify(world, VerifyMode.ALL)
    world.swarm.crashing.add("registry.test:5000/shop/web:3")
    world.remote.signed[world.release(web="3")] = "Bob <bob@example.org>"
    failed = await world.sync()
    assert failed.result == PassResult.ROLLED_BACK
    [revert] = world.reverts()
    assert world.remote.signed[revert].startswith("Driftless reconciler")
    after = await world.sync()
    assert (after.result, after.reason) == (PassResult.NOOP, Reason.IN_SYNC), after.message


def test_the_verdict_names_every_untrusted_commit_and_trusts_only_good_ones() -> None:
    def sig(sha: str, status: str, signer: str = "", key: str = "") -> Signature:
        return Signature(sha * 40, f"change {sha}", "Dev <dev@example.org>", status, signer, key)

    good = sig("a", "G", "Alice <alice@example.org>", "ABCD")
    assert verdict([good]).trusted
    assert verdict([good]).signer == "Alice <alice@example.org> (key ABCD)"
    assert problem(sig("b", "U", "eve@example.org", "SHA256:xyz")) == (
        f"commit {'b' * 12} ('change b' by Dev <dev@example.org>) is signed by a key that is not "
        "in the allow-list: eve@example.org (key SHA256:xyz)"
    )
    assert "not in the allow-list: key 0123" in str(problem(sig("c", "E", key="0123")))
    assert "bad signature" in str(problem(sig("d", "B", "Alice", "ABCD")))
    assert "expired key" in str(problem(sig("e", "Y", "Alice", "ABCD")))
    assert "revoked key" in str(problem(sig("f", "R", "Alice", "ABCD")))
    refused = verdict([good, sig("b", "N"), sig("c", "E", key="0123")])
    assert not refused.trusted
    assert len(refused.problems) == 2
    assert refused.signer == ""
