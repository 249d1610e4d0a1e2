"""Who may change the live stack when more than one agent can run (the agent as a Swarm service
on the managers): a lease, taken and renewed by compare-and-swap on one versioned object, and
judged on each agent's own monotonic clock, never on another node's wall clock (the way
Kubernetes' leader election judges its lease).

* The holder renews the lease every third of its duration. It may act only until
  ``renew_started + duration - margin`` of its last successful renewal: the time taken *before*
  the renewal was sent, so a slow request never extends it.
* Another agent notes the moment it first sees each version of the object. It may take the lease
  only when that version has stayed unchanged for a whole duration on its own clock, which is
  always later than the holder's own deadline; the takeover is itself a compare-and-swap, so of
  two agents taking at once one wins.
* Every term is one more than the last: a takeover is visible in the status and the logs.
* A holder that stops cleanly releases the lease (an empty holder): the next agent takes it at
  once instead of waiting out the duration.

Pure values and functions; the object itself is :mod:`reconciler.adapters.swarm_state`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum

#: the holder stops acting this long before its lease would end (slow calls, scheduling)
MARGIN = 2.0


@dataclass(frozen=True)
class Lease:
    holder: str  # the agent's identity (its Swarm task and a random suffix); "" when released
    node: str  # the node it runs on (shown on the status page)
    term: int  # one more at every takeover
    duration: float  # seconds others wait after the last change they saw before taking it
    acquired_at: datetime  # the holder's wall clock: shown, never used for a decision
    renewed_at: datetime

    def to_json(self) -> str:
        data = asdict(self)
        data["acquired_at"] = self.acquired_at.isoformat()
        data["renewed_at"] = self.renewed_at.isoformat()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Lease:
        """``ValueError`` when the text is not a lease."""
        try:
            data = json.loads(text)
            return cls(
                holder=str(data["holder"]),
                node=str(data.get("node", "")),
                term=int(data["term"]),
                duration=float(data["duration"]),
                acquired_at=datetime.fromisoformat(data["acquired_at"]),
                renewed_at=datetime.fromisoformat(data["renewed_at"]),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a lease: {exc}") from exc


@dataclass(frozen=True)
class Sighting:
    """What this agent saw of the lease object: the lease in it, the object's version (it
    changes with every write), and when this agent first saw that version (monotonic)."""

    lease: Lease | None
    version: int
    since: float


def observe(previous: Sighting | None, lease: Lease | None, version: int, now: float) -> Sighting:
    """The sighting after reading the object at ``now``: the clock restarts only when the
    version changed."""
    if previous is not None and previous.version == version:
        return Sighting(lease, version, previous.since)
    return Sighting(lease, version, now)


class Verdict(StrEnum):
    HOLD = "hold"  # this agent holds it: renew it
    TAKE = "take"  # free, released or expired: take it (a new term)
    WAIT = "wait"  # another agent holds it


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    term: int  # the term to write (HOLD: the same; TAKE: the next)
    wait: float = 0.0  # WAIT: seconds until it can expire, unless it changes meanwhile
    why: str = ""  # WAIT: who holds it, for the status page and the logs


def decide(sighting: Sighting, me: str, now: float) -> Decision:
    lease = sighting.lease
    if lease is None or not lease.holder:
        return Decision(Verdict.TAKE, (lease.term if lease else 0) + 1)
    if lease.holder == me:
        return Decision(Verdict.HOLD, lease.term)
    left = lease.duration - (now - sighting.since)
    if left <= 0:
        return Decision(Verdict.TAKE, lease.term + 1)
    where = f" on {lease.node}" if lease.node else ""
    return Decision(
        Verdict.WAIT,
        lease.term,
        wait=left,
        why=f"the lease is held by {lease.holder}{where} (term {lease.term})",
    )


def acts_until(renew_started: float, duration: float, margin: float = MARGIN) -> float:
    """The monotonic time until which a holder whose last renewal was sent at
    ``renew_started`` may act."""
    return renew_started + max(duration - margin, duration / 2)


def renew_every(duration: float) -> float:
    return duration / 3
