"""A journal that cannot be read, rebuilt from what the Swarm itself keeps (pure).

The journal says which revision a pass was changing, which services, and their specs from
before the pass. When it is damaged (a disk error, a hand edit), the Swarm still knows the same
facts: every service the agent deploys carries the revision that last changed it (the
``driftless.revision`` label), and Swarm keeps the spec a service had before its last update
(``PreviousSpec``). The services whose revision is not the last applied one were being changed
by the pass in flight; the rebuilt journal has the next start verify them again, and on failure
roll them back to their previous spec and revert that revision, as an intact journal would.
"""

from __future__ import annotations

from datetime import datetime

from reconciler.journal import Journal
from reconciler.models import LiveService, LiveState, Phase, RevisionInfo


def journal_from_live(
    live: LiveState, applied: RevisionInfo | None, now: datetime
) -> Journal | None:
    """The journal of the pass in flight, or None when every service runs the last applied
    revision (the pass had changed nothing, or had finished). ``applied``: the status's last
    applied revision (None when the status was lost too: the revision that changed a service
    last is taken for the one in flight)."""
    applied_sha = applied.sha if applied else None
    moved = [s for s in live.services if s.revision and s.revision != applied_sha]
    if not moved:
        return None
    # the pass in flight changed its services last: Swarm's version index only grows
    revision = str(max(moved, key=lambda s: s.version).revision)
    changed = sorted((s for s in moved if s.revision == revision), key=lambda s: s.name)
    return Journal(
        revision=RevisionInfo(revision),
        desired_hash="",
        phase=Phase.VERIFY,
        started_at=now,
        changed=tuple(s.name for s in changed),
        # created by the pass: no previous spec, so a rollback removes it
        previous={s.name: s.previous_spec for s in changed},
        good_revision=applied_sha or _before(changed, revision),
    )


def _before(changed: list[LiveService], revision: str) -> str | None:
    """The revision the changed services ran before (when the status that said so is lost)."""
    return next(
        (s.previous_revision for s in changed if s.previous_revision not in (None, revision)),
        None,
    )
