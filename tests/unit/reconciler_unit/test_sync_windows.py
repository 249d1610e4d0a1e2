"""Sync windows in a pass: outside a window a change is planned, shown and announced once, but
not applied (drift corrections neither); when the window opens it is applied; "sync anyway"
lets exactly one revision through; a rollback, a revert and a resumed pass are never held.

The agent is the one the daemon builds, with fakes at its ports (``reconciler_support.fakes``,
kept honest by ``tests/contract/``); the fake clock starts on Thursday 2026-01-01 12:00 UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from reconciler_support.fakes import Killed, kill
from reconciler_support.world import STACK, World, image

from reconciler import cron
from reconciler.decisions import ExitCode, Next, exit_code, hold
from reconciler.errors import Reason
from reconciler.models import Action, Cause, PassResult, Plan, ServiceChange
from reconciler.status import ConditionType
from reconciler.windows import SyncWindow, WindowKind, verdict

HOUR = 3600.0
# active from the fake clock's start (12:00 UTC) to 14:00 UTC, every day
LUNCH_FREEZE = SyncWindow(
    WindowKind.DENY, cron.parse("0 12 * * *"), 2 * HOUR, reason="lunch freeze"
)
# night work only: 22:00 UTC for 4 hours, so not at 12:00
NIGHTS = SyncWindow(WindowKind.ALLOW, cron.parse("0 22 * * *"), 4 * HOUR, reason="nights")


@pytest.fixture
async def world(tmp_path: Path) -> World:
    world = World(tmp_path)
    first = await world.sync()
    assert first.result == PassResult.SUCCESS, first.message
    world.notified.events.clear()
    return world


def _frozen(world: World, *windows: SyncWindow) -> None:
    world.configure(sync={"windows": windows or (LUNCH_FREEZE,)})


# ------------------------------------------------------------------ the decision


def _plan(cause: Cause) -> Plan:
    change = ServiceChange("web", Action.UPDATE, cause)
    return Plan("shop", (change,))


NOON = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)


def _hold(plan: Plan, **kw: object) -> tuple[Next, Reason, str] | None:
    args: dict[str, object] = {
        "short": "abc",
        "paused": False,
        "self_heal": True,
        "dry_run": False,
        "window": verdict([LUNCH_FREEZE], NOON),
    }
    halt = hold(plan, **{**args, **kw})  # type: ignore[arg-type]
    return None if halt is None else (halt.next, halt.reason, halt.message)


def test_a_closed_window_holds_a_change_and_says_until_when() -> None:
    assert _hold(_plan(Cause.DEFINITION)) == (
        Next.DONE,
        Reason.OUTSIDE_SYNC_WINDOW,
        "1 change(s) pending, not applied: deny window '0 12 * * *' (UTC, lunch freeze) is "
        "active; changes are applied again from 2026-01-01 14:00 UTC",
    )


def test_a_closed_window_holds_drift_corrections_too() -> None:
    held = _hold(_plan(Cause.DRIFT))
    assert held is not None
    assert held[1] is Reason.OUTSIDE_SYNC_WINDOW


def test_what_a_window_does_not_hold() -> None:
    assert (
        _hold(_plan(Cause.DEFINITION), window=verdict([LUNCH_FREEZE], NOON.replace(hour=15)))
        is None
    )
    assert _hold(_plan(Cause.DEFINITION), window=None) is None, "no windows configured"
    assert _hold(_plan(Cause.DEFINITION), sync_anyway=True) is None
    assert _hold(Plan("shop", ()))[1] is Reason.IN_SYNC  # type: ignore[index]
    # a pause and a dry run keep their own reasons inside a closed window
    assert _hold(_plan(Cause.DEFINITION), paused=True)[1] is Reason.SUSPENDED  # type: ignore[index]
    assert _hold(_plan(Cause.DEFINITION), dry_run=True)[1] is Reason.DRY_RUN  # type: ignore[index]
    # sync anyway does not lift a pause
    held = _hold(_plan(Cause.DEFINITION), paused=True, sync_anyway=True)
    assert held is not None
    assert held[1] is Reason.SUSPENDED


# ------------------------------------------------------------------ passes


async def test_outside_a_window_a_release_is_planned_shown_announced_once_then_applied(
    world: World,
) -> None:
    _frozen(world)
    world.release(web="2")
    held = await world.sync()
    assert (held.result, held.reason) == (PassResult.NOOP, Reason.OUTSIDE_SYNC_WINDOW)
    assert exit_code(held) == ExitCode.OK
    assert "deny window '0 12 * * *' (UTC, lunch freeze) is active" in held.message
    assert world.live() == "1", "nothing live changed"
    status = world.status()
    web = next(s for s in status.inventory if s.name == "web")
    assert (web.action, web.in_sync) == ("update", False), "the plan is shown"
    assert not status.is_true(ConditionType.READY)
    assert not status.is_true(ConditionType.STALLED)
    assert world.events() == ["outside_sync_window"]
    (alert,) = world.notified.events
    assert "outside the sync windows" in alert.summary()
    assert alert.services == ("web",)  # type: ignore[union-attr]

    again = await world.sync()
    assert again.reason == Reason.OUTSIDE_SYNC_WINDOW
    assert world.events() == ["outside_sync_window"], "announced once per revision"
    assert world.status().history[0].count == 2

    world.clock.advance(2 * HOUR)  # 14:00: the window is over
    applied = await world.sync()
    assert (applied.result, applied.reason) == (
        PassResult.SUCCESS,
        Reason.RECONCILIATION_SUCCEEDED,
    )
    assert world.live() == "2"
    assert world.events() == ["outside_sync_window", "deploy_succeeded"]


async def test_a_later_held_revision_is_announced_again(world: World) -> None:
    _frozen(world)
    world.release(web="2")
    await world.sync()
    world.release(web="3")
    await world.sync()
    assert world.events() == ["outside_sync_window", "outside_sync_window"]


async def test_outside_every_allow_window_nothing_is_applied(world: World) -> None:
    _frozen(world, NIGHTS)
    world.release(web="2")
    out = await world.sync()
    assert out.reason == Reason.OUTSIDE_SYNC_WINDOW
    assert "outside every allow window; changes are applied again from 2026-01-01 22:00 UTC" in (
        out.message
    )
    assert world.live() == "1"
    world.clock.advance(10 * HOUR)  # 22:00
    assert (await world.sync()).result == PassResult.SUCCESS
    assert world.live() == "2"


async def test_drift_is_not_corrected_in_a_deny_window_and_is_when_it_opens(world: World) -> None:
    _frozen(world)
    world.swarm.stacks[STACK]["api"].definition["deploy"]["replicas"] = 5
    out = await world.sync()
    assert out.reason == Reason.OUTSIDE_SYNC_WINDOW
    assert world.swarm.stacks[STACK]["api"].definition["deploy"]["replicas"] == 5
    assert world.events() == ["outside_sync_window"], "not 'self-heal off'"
    assert world.notified.events[0].services == ("api",)  # type: ignore[union-attr]
    world.clock.advance(2 * HOUR)
    healed = await world.sync()
    assert (healed.result, healed.reason) == (PassResult.SUCCESS, Reason.DRIFT_CORRECTED)
    assert world.swarm.stacks[STACK]["api"].definition["deploy"]["replicas"] == 3


async def test_sync_anyway_lets_one_revision_through(world: World) -> None:
    _frozen(world)
    two = world.release(web="2")
    await world.sync()
    async with world.agent() as agent:
        assert await agent.sync_anyway() == two, "the head the agent last fetched"
        assert agent.woken.is_set(), "a pass is asked for"
    assert world.status().sync_anyway == two
    out = await world.sync()
    assert (out.result, out.reason) == (PassResult.SUCCESS, Reason.RECONCILIATION_SUCCEEDED)
    assert world.live() == "2"
    assert world.status().sync_anyway is None, "spent"
    world.release(web="3")
    later = await world.sync()
    assert later.reason == Reason.OUTSIDE_SYNC_WINDOW, "a later head is held again"
    assert world.live() == "2"


async def test_sync_anyway_for_a_revision_the_branch_moved_past_is_forgotten(
    world: World,
) -> None:
    _frozen(world)
    world.release(web="2")
    await world.sync()
    async with world.agent() as agent:
        two = await agent.sync_anyway(world.status().desired.sha[:8])  # type: ignore[union-attr]
        assert two is not None
        assert await agent.sync_anyway("abcdef12") is None, "a prefix the agent cannot resolve"
    world.release(web="3")
    out = await world.sync()
    assert out.reason == Reason.OUTSIDE_SYNC_WINDOW
    assert world.live() == "1"
    assert world.status().sync_anyway is None


async def test_a_failed_deploy_let_through_is_rolled_back_and_reverted_in_the_window(
    world: World,
) -> None:
    _frozen(world)
    world.swarm.crashing.add(image("web", "3"))
    world.release(web="3")
    await world.sync()
    async with world.agent() as agent:
        await agent.sync_anyway()
    out = await world.sync()
    assert (out.result, out.reason) == (PassResult.ROLLED_BACK, Reason.HEALTH_CHECK_FAILED)
    assert world.live() == "1"
    assert len(world.reverts()) == 1, "the revert is pushed though the window is closed"
    assert world.status().sync_anyway is None


async def test_a_pass_interrupted_before_the_window_closed_is_finished_in_it(
    world: World,
) -> None:
    world.release(web="2")
    world.swarm.on["wait_converged"] = kill("wait_converged")
    with pytest.raises(Killed):
        await world.sync()
    _frozen(world)  # the agent comes back inside the freeze
    out = await world.sync()
    assert out.trigger == "recovery"
    assert out.result == PassResult.SUCCESS, out.message
    assert world.live() == "2"
    assert not world.journal_left()


async def test_the_window_metric_is_judged_when_scraped(world: World) -> None:
    labels = {"stack": STACK, "environment": "test"}
    async with world.agent() as agent:
        registry = agent.metrics_registry
        assert registry.get_sample_value("reconciler_sync_window_open", labels) == 1.0
    _frozen(world)
    async with world.agent() as agent:
        registry = agent.metrics_registry
        assert registry.get_sample_value("reconciler_sync_window_open", labels) == 0.0
        world.clock.advance(2 * HOUR)
        assert registry.get_sample_value("reconciler_sync_window_open", labels) == 1.0
