"""The apply journal: what an in-flight pass is changing (a value; ``state.StateStore`` keeps it
in ``<state_dir>/journal.json``).

Written before ``docker stack deploy``, updated at each later phase, removed when the pass is
recorded. A restart that finds it finishes that pass instead of starting a new one: it deploys
and verifies the same revision again, or rolls back to ``previous`` and reverts, and never
pushes a revert twice (``revert_commit``) nor opens two pull requests for it
(``revert_branch``, ``revert_proposal``). Each change of phase is a method that returns the
next journal.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from reconciler.errors import Reason
from reconciler.models import Phase, RevisionInfo
from reconciler.types import JSONDict
from reconciler.waves import RolloutPlan


@dataclass(frozen=True)
class Journal:
    revision: RevisionInfo
    desired_hash: str
    phase: Phase
    started_at: datetime
    changed: tuple[str, ...]  # services created/updated/removed by the pass
    previous: dict[str, JSONDict | None]  # their Swarm specs before it (None = did not exist)
    good_revision: str | None = None  # the last applied revision before the pass
    definition_changed: bool = True  # False when the pass only corrected drift
    failure_reason: Reason | None = None
    failure_message: str = ""
    failure_detail: str = ""
    rollback_done: bool = False
    revert_commit: str | None = None
    #: the branch the revert commit was pushed to for a pull (merge) request, because the branch
    #: followed takes no direct pushes (``git.revert_via``); None: pushed to that branch
    revert_branch: str | None = None
    #: the web address of that request, once it is open
    revert_proposal: str | None = None
    #: the changed services wave by wave, the canary steps and the images they replace
    rollout: RolloutPlan = field(default_factory=RolloutPlan)
    #: False when the failure is not the revision's (no analysis could conclude): roll back,
    #: but do not revert or quarantine it
    blamed: bool = True
    #: the engine went away while this pass was changing the stack (it restarted, its socket
    #: vanished): a later verify that only times out is not the revision's fault
    engine_lost: bool = False
    #: the digest each image the pass deploys was resolved to at pre-flight (image → digest)
    pins: dict[str, str] = field(default_factory=dict)
    #: the folders of the bases the stack file extends: their commits are the revision's too
    bases: tuple[str, ...] = ()

    def at(self, phase: Phase) -> Journal:
        return replace(self, phase=phase)

    def failed(
        self, reason: Reason, message: str, detail: str = "", *, blamed: bool = True
    ) -> Journal:
        """The pass failed (apply or verify): what the rollback, the revert and the record
        say about it; ``blamed``: the revision is at fault (reverted and quarantined)."""
        return replace(
            self,
            failure_reason=reason,
            failure_message=message,
            failure_detail=detail,
            blamed=blamed,
        )

    def rolled_back(self) -> Journal:
        return replace(self, rollback_done=True, phase=Phase.REVERT)

    def reverted(self, commit: str | None) -> Journal:
        return replace(self, revert_commit=commit)

    @property
    def revert_landed(self) -> str | None:
        """The revert commit once the revert counts as done: pushed to the branch followed, or
        proposed in an open pull (merge) request; None before."""
        return None if self.revert_branch and not self.revert_proposal else self.revert_commit

    def proposing(self, commit: str, branch: str) -> Journal:
        """The revert is on ``branch``; its pull (merge) request is not open yet."""
        return replace(self, revert_commit=commit, revert_branch=branch)

    def proposed(self, url: str) -> Journal:
        return replace(self, revert_proposal=url)
