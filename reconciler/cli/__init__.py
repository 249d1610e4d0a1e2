"""``reconciler``: the command line of the GitOps agent (verbs in :mod:`.parser`, exit codes in
:class:`reconciler.decisions.ExitCode`; errors that end a command are printed here, once)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from loguru import logger

from reconciler.cli.commands import cmd_diff, cmd_run, cmd_sync, cmd_validate
from reconciler.cli.control import cmd_pause, cmd_release, cmd_resume, cmd_sync_anyway
from reconciler.cli.parser import build
from reconciler.cli.status import cmd_status
from reconciler.decisions import ExitCode
from reconciler.errors import (
    ConfigError,
    InterruptedPass,
    LockError,
    ReconcilerError,
    ValidationError,
    WaitingError,
)

EXIT_OK = ExitCode.OK
EXIT_PENDING = ExitCode.PENDING
EXIT_USAGE = ExitCode.USAGE
EXIT_REFUSED = ExitCode.REFUSED
EXIT_ROLLED_BACK = ExitCode.ROLLED_BACK
EXIT_STALLED = ExitCode.STALLED
EXIT_TRANSIENT = ExitCode.TRANSIENT
EXIT_LOCKED = ExitCode.LOCKED
EXIT_INTERRUPTED = ExitCode.INTERRUPTED

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "sync": cmd_sync,
    "diff": cmd_diff,
    "validate": cmd_validate,
    "status": cmd_status,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "release": cmd_release,
    "sync-anyway": cmd_sync_anyway,
}


def _parser() -> argparse.ArgumentParser:
    return build()


def _failed(exc: ReconcilerError) -> int:
    """An error that ended a command: its message (the adapter masked it) and exit code."""
    if isinstance(exc, ConfigError):
        print(f"reconciler: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    if isinstance(exc, LockError):
        print(f"reconciler: {exc}", file=sys.stderr)
        return ExitCode.LOCKED
    if isinstance(exc, InterruptedPass):
        print("reconciler: interrupted; the next start resumes the pass", file=sys.stderr)
        return ExitCode.INTERRUPTED
    if isinstance(exc, WaitingError):
        print(f"reconciler: {exc}", file=sys.stderr)
        return ExitCode.TRANSIENT
    if isinstance(exc, ValidationError):
        print(f"reconciler: {exc}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return ExitCode.REFUSED
    print(f"reconciler: {exc.reason.value}: {exc}", file=sys.stderr)
    return ExitCode.STALLED


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ReconcilerError as exc:
        return _failed(exc)
    except KeyboardInterrupt:
        return _failed(InterruptedPass("interrupted"))
    except BrokenPipeError:  # `reconciler status | head`
        return ExitCode.OK
    finally:
        logger.complete()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
