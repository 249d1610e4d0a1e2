"""Every error the reconciler raises, typed by what should happen next.

This module is a leaf: it imports nothing else of the package, so any layer may raise these.

* :class:`StallingError` needs a human. The same input will fail the same way, so the agent does
  not retry until the input changes (a new revision, a new config). Examples: invalid desired
  state, an image that does not exist, a revert that cannot be made cleanly.
* :class:`WaitingError` is transient: retried after ``retry_after`` seconds, or the retry
  interval (git remote, Docker engine, a registry or a forge's API unreachable). Which
  component failed is read from the failure's text in one place, ``reconciler.faults``, and
  named by the reason.

Each error carries a named ``reason`` (a :class:`Reason`), which is what the status conditions,
history entries, metrics and notifications show. Third-party exceptions are translated into these
at the adapter edge (``raise ... from exc``), where the adapter also masks secrets in the text.
What a pass does with an error in each phase is decided in one place:
:func:`reconciler.decisions.halt_for`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Reason(StrEnum):
    """Named reasons for conditions, history entries and events (Flux style)."""

    # success / progress
    RECONCILIATION_SUCCEEDED = "ReconciliationSucceeded"
    PROGRESSING = "Progressing"
    IN_SYNC = "InSync"
    SUSPENDED = "Suspended"
    DRIFT_DETECTED = "DriftDetected"
    DRIFT_CORRECTED = "DriftCorrected"
    HEALTHY = "Healthy"
    DRY_RUN = "DryRun"
    OUTSIDE_SYNC_WINDOW = "OutsideSyncWindow"  # changes planned, not applied: a window is closed
    # failures, by phase
    ARTIFACT_FAILED = "ArtifactFailed"  # git: refused credentials or host key, no such branch
    GIT_REMOTE_UNAVAILABLE = "GitRemoteUnavailable"  # git remote unreachable, timing out or 5xx
    SIGNATURE_REFUSED = "SignatureRefused"  # not signed by an allowed key (git.verify)
    FORGE_UNAVAILABLE = "ForgeUnavailable"  # GitHub's/GitLab's API unreachable, 5xx or rate limit
    VALIDATION_FAILED = "ValidationFailed"  # render/validate: YAML, unknown service, labels
    PREFLIGHT_FAILED = "PreflightFailed"  # missing image, secret, config, network
    QUARANTINED = "Quarantined"  # the revision failed before and is never applied again
    DOCKER_UNAVAILABLE = "DockerUnavailable"  # Docker engine unreachable / not a manager
    REGISTRY_UNAVAILABLE = "RegistryUnavailable"  # a registry down, answering 5xx/429, or slow
    STATE_UNWRITABLE = "StateUnwritable"  # the state directory cannot be written (disk full)
    APPLY_FAILED = "ApplyFailed"  # docker stack deploy failed
    HEALTH_CHECK_FAILED = "HealthCheckFailed"  # verify: Swarm rollout or HTTP check failed
    ANALYSIS_FAILED = "AnalysisFailed"  # the canary measured bad (a metric over its condition)
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"  # no analysis could measure the canary
    ROLLBACK_FAILED = "RollbackFailed"  # the services did not come back healthy
    REVERT_FAILED = "RevertFailed"  # git revert not clean, or push refused for good
    #: the failed revision's revert waits in a pull (merge) request: the branch still holds the
    #: revision, which stays quarantined until the request is merged
    REVERT_PROPOSED = "RevertProposed"
    INTERRUPTED = "Interrupted"  # the agent stopped mid-pass; the next start resumes
    LEASE_LOST = "LeaseLost"  # another agent took the lease mid-pass: this one stopped acting
    INTERNAL_ERROR = "InternalError"


class ReconcilerError(Exception):
    """Base of every reconciler error. The adapter that raises it has masked its text."""

    default_reason: ClassVar[Reason] = Reason.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        reason: Reason | None = None,
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.reason = reason or self.default_reason
        #: longer output (a failed check's body, docker's stderr)
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class StallingError(ReconcilerError):
    """Needs a human; do not retry until the input changes."""


class WaitingError(ReconcilerError):
    """Transient; retry after ``retry_after`` seconds (or the retry interval)."""


# ------------------------------------------------------------------ specific errors


class ConfigError(StallingError):
    """The agent's own configuration is invalid (CLI exit code 2)."""


class ValidationError(StallingError):
    """The desired state of a revision is invalid: refused, nothing live is touched."""

    default_reason = Reason.VALIDATION_FAILED

    def __init__(self, message: str, *, problems: tuple[str, ...] = ()) -> None:
        self.problems = problems
        super().__init__(message, detail="\n".join(problems))


class PreflightError(StallingError):
    """Something the revision references does not exist (image, secret, config, network)."""

    default_reason = Reason.PREFLIGHT_FAILED


class GitError(WaitingError):
    """The git remote could not be fetched or pushed to: unreachable or failing
    (``GitRemoteUnavailable``), or refusing (auth, host key, missing branch: ``ArtifactFailed``).
    """

    default_reason = Reason.ARTIFACT_FAILED


class DockerError(WaitingError):
    """The Docker engine (``DockerUnavailable``) or a registry (``RegistryUnavailable``) could not
    be reached or failed: not the revision's fault."""

    default_reason = Reason.DOCKER_UNAVAILABLE


class ApplyError(StallingError):
    """``docker stack deploy`` refused the stack or failed, or the engine refused a request about
    the revision's spec."""

    default_reason = Reason.APPLY_FAILED


class RollbackError(StallingError):
    default_reason = Reason.ROLLBACK_FAILED


class RevertError(StallingError):
    default_reason = Reason.REVERT_FAILED


class BranchProtected(RevertError):
    """The remote refuses a direct push to the branch (branch protection, a ruleset, a server
    hook): the revert can reach it only through a pull or merge request (``git.revert_via``)."""


class ForgeError(StallingError):
    """GitHub or GitLab refused to open the pull (merge) request of a revert: the token is
    refused or may not do it, the repository is unknown, the request is invalid."""

    default_reason = Reason.REVERT_FAILED


class ForgeUnavailable(WaitingError):
    """GitHub's or GitLab's API could not be reached, timed out, failed (5xx) or rate-limits:
    the revert is proposed again by the next pass."""

    default_reason = Reason.FORGE_UNAVAILABLE


class StateError(WaitingError):
    """The state directory cannot be written (disk full, read-only): nothing is applied until
    the journal can be kept."""

    default_reason = Reason.STATE_UNWRITABLE


class JournalUnreadable(ReconcilerError):
    """``journal.json`` exists but cannot be read (damaged): it is rebuilt from the live stack."""


class LockError(ReconcilerError):
    """Another agent holds the state directory's lock."""


class RevisionGone(StallingError):
    """A revision the agent was working on no longer exists in the remote (force push)."""

    default_reason = Reason.ARTIFACT_FAILED


class InterruptedPass(ReconcilerError):
    """A stop was requested between phases; the journal lets the next start resume."""

    default_reason = Reason.INTERRUPTED


class LeaseLost(InterruptedPass):
    """This agent no longer holds the lease (another took it, or it could not be renewed in
    time): it stops acting at once, and the holder finishes the pass from the journal."""

    default_reason = Reason.LEASE_LOST
