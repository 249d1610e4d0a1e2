"""The lease that makes one agent the only one acting when several run (the agent as a Swarm
service): decisions on each agent's own clock, takeovers by compare-and-swap, a holder that
stops acting before anyone may take over."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from reconciler_support.fakes import FakeLeaseObject

from reconciler.leadership import Leadership
from reconciler.lease import Lease, Sighting, Verdict, acts_until, decide, observe

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def lease(holder: str = "agent-a", term: int = 3, duration: float = 15.0) -> Lease:
    return Lease(holder, "manager-1", term, duration, T0, T0)


# ------------------------------------------------------------------ pure decisions


def test_a_free_object_is_taken_with_the_first_term() -> None:
    assert decide(Sighting(None, 1, 0.0), "me", 0.0).verdict is Verdict.TAKE
    assert decide(Sighting(None, 1, 0.0), "me", 0.0).term == 1


def test_a_released_lease_is_taken_at_once_with_the_next_term() -> None:
    decision = decide(Sighting(lease(holder=""), 9, 100.0), "me", 100.0)
    assert (decision.verdict, decision.term) == (Verdict.TAKE, 4)


def test_the_holder_renews_its_own_lease_in_the_same_term() -> None:
    decision = decide(Sighting(lease(holder="me"), 9, 0.0), "me", 500.0)
    assert (decision.verdict, decision.term) == (Verdict.HOLD, 3)


def test_another_agents_lease_is_waited_for_and_says_who_holds_it() -> None:
    decision = decide(Sighting(lease(), 9, 100.0), "me", 105.0)
    assert decision.verdict is Verdict.WAIT
    assert decision.wait == pytest.approx(10.0)
    assert "agent-a on manager-1 (term 3)" in decision.why


def test_a_lease_unchanged_for_its_whole_duration_on_this_clock_is_taken() -> None:
    decision = decide(Sighting(lease(), 9, 100.0), "me", 115.0)
    assert (decision.verdict, decision.term) == (Verdict.TAKE, 4)


def test_a_renewal_seen_restarts_the_wait_whatever_the_holders_wall_clock_says() -> None:
    first = observe(None, lease(), 9, 100.0)
    same = observe(first, lease(), 9, 114.0)
    assert same.since == 100.0
    # the holder renewed (a new version); its wall clock is an hour behind: it does not matter
    behind = replace(lease(), renewed_at=datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    renewed = observe(same, behind, 10, 114.0)
    assert renewed.since == 114.0
    assert decide(renewed, "me", 120.0).verdict is Verdict.WAIT


def test_the_holder_stops_acting_before_any_other_agent_may_take_over() -> None:
    # the holder sent its renewal at 100; another agent saw that version at 100 at the earliest
    for duration in (6.0, 15.0, 60.0):
        holder_until = acts_until(100.0, duration)
        other_sighting = Sighting(lease(duration=duration), 10, 100.0)
        earliest_takeover = 100.0 + duration
        assert holder_until < earliest_takeover
        assert decide(other_sighting, "me", holder_until).verdict is Verdict.WAIT


def test_a_lease_round_trips_as_the_text_kept_in_the_label() -> None:
    assert Lease.from_json(lease().to_json()) == lease()
    with pytest.raises(ValueError, match="not a lease"):
        Lease.from_json('{"holder": "x"}')
    with pytest.raises(ValueError, match="not a lease"):
        Lease.from_json("not json")


# ------------------------------------------------------------------ keeping it (a fake object)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def agent(obj: FakeLeaseObject, clock: Clock, me: str) -> Leadership:
    return Leadership(obj, me=me, node=f"node-{me}", duration=15.0, now=lambda: T0, monotonic=clock)


def test_of_two_agents_only_one_holds_and_the_other_says_who_does() -> None:
    obj, clock = FakeLeaseObject(), Clock()
    a, b = agent(obj, clock, "a"), agent(obj, clock, "b")
    asyncio.run(a.step())
    asyncio.run(b.step())
    assert a.holds()
    assert not b.holds()
    assert "held by a on node-a (term 1)" in b.standing.why
    for _ in range(20):  # renewals every 5 s for 100 s: b never takes it
        clock.t += 5
        asyncio.run(a.step())
        asyncio.run(b.step())
        assert a.holds()
        assert not b.holds()
    assert obj.current is not None
    assert obj.current.term == 1


def test_when_the_holder_dies_the_other_takes_over_only_after_the_duration() -> None:
    obj, clock = FakeLeaseObject(), Clock()
    a, b = agent(obj, clock, "a"), agent(obj, clock, "b")
    asyncio.run(a.step())
    asyncio.run(b.step())
    clock.t += 14  # a is gone; b has seen the same version for 14 s
    asyncio.run(b.step())
    assert not b.holds()
    clock.t += 1.5
    asyncio.run(b.step())
    assert b.holds()
    assert b.standing.term == 2
    assert not a.holds()  # a's own deadline passed before b took over


def test_two_agents_taking_a_free_lease_at_once_one_wins() -> None:
    obj, clock = FakeLeaseObject(), Clock()
    b = agent(obj, clock, "b")
    reading = obj.read()
    # both read version 1; a writes first; b's compare-and-swap at version 1 fails
    assert obj.swap(reading.version, lease("a", 1))
    assert not obj.swap(reading.version, lease("b", 1))
    asyncio.run(b.step())
    assert not b.holds()


def test_a_holder_that_cannot_reach_the_swarm_stops_acting_when_its_renewal_runs_out() -> None:
    obj, clock = FakeLeaseObject(), Clock()
    a = agent(obj, clock, "a")
    asyncio.run(a.step())
    obj.down = True
    clock.t += 5
    assert asyncio.run(a.step()) is None
    assert a.holds()  # still within its last renewal
    clock.t += 8
    assert not a.holds()
    asyncio.run(a.step())
    assert "the Swarm does not have a leader" in a.standing.why
    obj.down = False  # quorum back: nobody took it, and a takes it again
    asyncio.run(a.step())
    assert a.holds()


def test_a_clean_stop_releases_the_lease_so_the_next_agent_takes_it_at_once() -> None:
    obj, clock = FakeLeaseObject(), Clock()
    a, b = agent(obj, clock, "a"), agent(obj, clock, "b")
    asyncio.run(a.step())
    asyncio.run(b.step())
    asyncio.run(a.release())
    assert not a.holds()
    asyncio.run(b.step())
    assert b.holds()
    assert b.standing.term == 2
