"""What happens next: every decision about it, in one place, as pure functions.

* :func:`halt_for` — an error in a phase → what the pass does next (:class:`Halt`);
* :func:`hold` — a plan that is not to be applied (in sync, drift with self-heal off, paused,
  dry run, outside the sync windows) → the :class:`Halt` that ends the pass without applying;
* :func:`exit_code` — a pass's outcome → the exit code of ``reconciler sync``;
* :func:`next_interval` — a pass's outcome → when the daemon runs the next pass.

The events worth announcing are decided from the same outcome by ``reconciler.record``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from reconciler.errors import (
    Reason,
    ReconcilerError,
    StallingError,
    ValidationError,
    WaitingError,
)
from reconciler.models import PassResult, Phase, Plan
from reconciler.outcome import PassOutcome
from reconciler.windows import Verdict


class Next(StrEnum):
    """What a phase that cannot continue says comes next."""

    DONE = "done"  # nothing (more) to apply: in sync, or reported without applying
    REFUSED = "refused"  # the revision is refused; nothing live changed; wait for new input
    #: the revision is refused, but no human is needed: it waits for something under way (the
    #: pull request that reverts it, which auto-merge or a review will merge)
    WAITING = "waiting"
    RETRY = "retry"  # transient: try the pass again after ``retry_after`` / the retry interval
    FAILED = "failed"  # the revision failed: roll back what changed, revert it, quarantine it
    STALLED = "stalled"  # needs a human: the rollback or the revert failed


@dataclass(frozen=True)
class Halt:
    """A phase's answer when the pass does not go on to the next phase."""

    next: Next
    reason: Reason
    message: str
    detail: str = ""
    problems: tuple[str, ...] = ()
    retry_after: float | None = None


def halt_for(phase: Phase, exc: ReconcilerError, *, live_changed: bool = False) -> Halt:
    """The one mapping from an error raised in ``phase`` to what comes next. ``live_changed``:
    the pass already changed the stack (a resumed pass), so the revision can only fail."""
    problems = exc.problems if isinstance(exc, ValidationError) else ()
    if phase is Phase.APPLY and not isinstance(exc, WaitingError):
        return Halt(Next.FAILED, Reason.APPLY_FAILED, exc.message, exc.detail)
    if phase is Phase.VERIFY and not isinstance(exc, WaitingError):
        return Halt(Next.FAILED, Reason.HEALTH_CHECK_FAILED, exc.message, exc.detail)
    if isinstance(exc, WaitingError):
        return Halt(Next.RETRY, exc.reason, exc.message, exc.detail, retry_after=exc.retry_after)
    if phase in (Phase.ROLLBACK, Phase.REVERT):
        return Halt(Next.STALLED, exc.reason, exc.message, exc.detail)
    if live_changed:
        return Halt(Next.FAILED, exc.reason, exc.message, exc.detail)
    if isinstance(exc, StallingError):
        return Halt(Next.REFUSED, exc.reason, exc.message, exc.detail, problems)
    return Halt(Next.RETRY, exc.reason, exc.message, exc.detail)


def hold(
    plan: Plan,
    *,
    short: str,
    paused: bool,
    self_heal: bool,
    dry_run: bool,
    window: Verdict | None = None,
    sync_anyway: bool = False,
) -> Halt | None:
    """Why a plan is not applied, or None to apply it. ``short`` names the revision; ``window``:
    the sync windows' verdict now (None: no windows); ``sync_anyway``: someone allowed this
    revision outside the windows. A closed window holds drift corrections too (they change
    live services); a pause or a dry run keeps its own reason."""
    if plan.empty:
        return Halt(Next.DONE, Reason.IN_SYNC, f"in sync at {short}")
    if plan.only_drift and not self_heal:
        drifted = ", ".join(c.service for c in plan.drifted)
        return Halt(Next.DONE, Reason.DRIFT_DETECTED, f"drift on {drifted} (self-heal off)")
    pending = f"{len(plan.to_apply)} change(s) pending, not applied"
    if paused or dry_run:
        why = "paused" if paused else "dry run"
        return Halt(Next.DONE, Reason.SUSPENDED if paused else Reason.DRY_RUN, f"{pending} ({why})")
    if window is not None and not window.open and not sync_anyway:
        return Halt(Next.DONE, Reason.OUTSIDE_SYNC_WINDOW, f"{pending}: {window.message}")
    return None


#: what each kind of halt records as the pass's result
RESULT_OF: dict[Next, PassResult] = {
    Next.DONE: PassResult.NOOP,
    Next.REFUSED: PassResult.REFUSED,
    Next.WAITING: PassResult.REFUSED,
    Next.RETRY: PassResult.ERROR,
    Next.FAILED: PassResult.ROLLED_BACK,
    Next.STALLED: PassResult.FAILED,
}


class ExitCode(IntEnum):
    """``reconciler`` exit codes (also in ``--help`` and reconciler/README.md)."""

    OK = 0  # success: applied, in sync, valid, or Ready
    PENDING = 1  # diff: changes pending; status: not Ready
    USAGE = 2  # bad arguments or configuration
    REFUSED = 3  # invalid desired state / revision refused (nothing live touched)
    ROLLED_BACK = 4  # the deploy failed its checks and was rolled back
    STALLED = 5  # needs a human: rollback or revert failed
    TRANSIENT = 6  # git remote or Docker unreachable: try again later
    LOCKED = 7  # another agent holds the state directory
    INTERRUPTED = 8  # stopped by a signal; the next start resumes the pass


_EXIT_OF = {
    PassResult.SUCCESS: ExitCode.OK,
    PassResult.NOOP: ExitCode.OK,
    PassResult.REFUSED: ExitCode.REFUSED,
    PassResult.ROLLED_BACK: ExitCode.ROLLED_BACK,
    PassResult.FAILED: ExitCode.STALLED,
    PassResult.ERROR: ExitCode.TRANSIENT,
}


def exit_code(outcome: PassOutcome) -> ExitCode:
    if outcome.stalled and outcome.result in (PassResult.FAILED, PassResult.ROLLED_BACK):
        return ExitCode.STALLED
    return _EXIT_OF[outcome.result]


def next_interval(outcome: PassOutcome | None, *, interval: float, retry: float) -> float:
    """Seconds until the next pass: ``interval``, or ``retry`` after an error or a stall (the
    error's own ``retry_after`` when it gave one). ``None``: the pass crashed."""
    if outcome is None or outcome.result in (PassResult.ERROR, PassResult.FAILED):
        if outcome is not None and outcome.retry_after:
            return outcome.retry_after
        return retry
    return interval
