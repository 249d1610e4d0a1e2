"""Every error the reconciler raises, typed by what should happen next.

This module is a leaf: it imports nothing else of the package, so any layer may raise these.

* :class:`StallingError` needs a human. The same input will fail the same way, so the agent does
  not retry until the input changes (a new revision, a new config). Examples: invalid desired
  state, an image that does not exist, a revert that cannot be made cleanly.
* :class:`WaitingError` is transient. Retry after ``retry_after`` seconds (git remote or Docker
  engine unreachable, registry down).
* :class:`GenericError` is anything else: retried on the normal retry interval.

Each error carries a named ``reason`` (a :class:`Reason`), which is what the status conditions,
history entries, metrics and notifications show, and says whether it is worth notifying about.
Third-party exceptions are translated into these at the adapter edge (``raise ... from exc``).
"""

from __future__ import annotations

import re
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
    # failures, by phase
    ARTIFACT_FAILED = "ArtifactFailed"  # fetch: git remote unreachable, auth, bad branch
    VALIDATION_FAILED = "ValidationFailed"  # render/validate: YAML, unknown service, labels
    PREFLIGHT_FAILED = "PreflightFailed"  # missing image, secret, config, network
    QUARANTINED = "Quarantined"  # the revision failed before and is never applied again
    DOCKER_UNAVAILABLE = "DockerUnavailable"  # Docker engine unreachable / not a manager
    APPLY_FAILED = "ApplyFailed"  # docker stack deploy failed
    HEALTH_CHECK_FAILED = "HealthCheckFailed"  # verify: Swarm rollout or HTTP check failed
    ROLLBACK_FAILED = "RollbackFailed"  # the services did not come back healthy
    REVERT_FAILED = "RevertFailed"  # git revert not clean, or push refused for good
    INTERRUPTED = "Interrupted"  # the agent stopped mid-pass; the next start resumes
    INTERNAL_ERROR = "InternalError"


class ErrorKind(StrEnum):
    STALLING = "stalling"
    WAITING = "waiting"
    GENERIC = "generic"


class ReconcilerError(Exception):
    """Base of every reconciler error. ``str(err)`` is safe to show: secrets are masked."""

    kind: ClassVar[ErrorKind] = ErrorKind.GENERIC
    default_reason: ClassVar[Reason] = Reason.INTERNAL_ERROR
    #: notify humans about it (the agent still deduplicates: once per revision and reason)
    notify: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        reason: Reason | None = None,
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.message = mask_secrets(message)
        self.reason = reason or self.default_reason
        #: longer output (a failed check's body, docker's stderr), masked
        self.detail = mask_secrets(detail)
        self.retry_after = retry_after
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class StallingError(ReconcilerError):
    """Needs a human; do not retry until the input changes."""

    kind = ErrorKind.STALLING


class WaitingError(ReconcilerError):
    """Transient; retry after ``retry_after`` seconds (or the retry interval)."""

    kind = ErrorKind.WAITING
    notify = False


class GenericError(ReconcilerError):
    kind = ErrorKind.GENERIC


# ------------------------------------------------------------------ specific errors


class ConfigError(StallingError):
    """The agent's own configuration is invalid (CLI exit code 2)."""

    default_reason = Reason.INTERNAL_ERROR


class ValidationError(StallingError):
    """The desired state of a revision is invalid: refused, nothing live is touched."""

    default_reason = Reason.VALIDATION_FAILED

    def __init__(self, message: str, *, problems: tuple[str, ...] = (), **kw: object) -> None:
        self.problems = tuple(mask_secrets(p) for p in problems)
        detail = "\n".join(self.problems)
        super().__init__(message, detail=detail, **kw)  # type: ignore[arg-type]


class PreflightError(StallingError):
    """Something the revision references does not exist (image, secret, config, network)."""

    default_reason = Reason.PREFLIGHT_FAILED


class QuarantinedError(StallingError):
    default_reason = Reason.QUARANTINED
    notify = False  # notified once when the revision was quarantined


class GitError(WaitingError):
    """The git remote could not be fetched (network, auth, missing branch)."""

    default_reason = Reason.ARTIFACT_FAILED


class DockerError(WaitingError):
    """The Docker engine or a registry could not be reached."""

    default_reason = Reason.DOCKER_UNAVAILABLE


class ApplyError(GenericError):
    default_reason = Reason.APPLY_FAILED


class HealthCheckError(GenericError):
    default_reason = Reason.HEALTH_CHECK_FAILED


class RollbackError(StallingError):
    default_reason = Reason.ROLLBACK_FAILED


class RevertError(StallingError):
    default_reason = Reason.REVERT_FAILED


class LockError(ReconcilerError):
    """Another agent holds the state directory's lock."""

    notify = False


class RevisionGone(StallingError):
    """A revision the agent was working on no longer exists in the remote (force push)."""

    default_reason = Reason.ARTIFACT_FAILED


class InterruptedPass(GenericError):
    """A stop was requested between phases; the journal lets the next start resume."""

    default_reason = Reason.INTERRUPTED
    notify = False


# ------------------------------------------------------------------ masking

_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a secret value (token, webhook URL) so that it is masked wherever it appears."""
    value = value.strip()
    if len(value) >= 4:
        _SECRETS.add(value)


def mask_secrets(text: str) -> str:
    """Mask URL credentials (``https://user:token@host`` → ``https://***@host``) and every
    registered secret value."""
    if not text:
        return text
    masked = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        masked = masked.replace(secret, "***")
    return masked
