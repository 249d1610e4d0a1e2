"""The command line's grammar: verbs, their options, and the global options, which are accepted
before the verb and after it (``reconciler --config F sync`` and ``reconciler sync --config F``,
as kubectl and argocd accept both)."""

from __future__ import annotations

import argparse
from pathlib import Path

from reconciler import __version__

EXIT_CODES = """exit codes:
  0  success: applied, in sync, valid, or Ready
  1  diff: changes pending / status: not Ready
  2  usage or configuration error
  3  refused: invalid desired state, missing image, quarantined revision (nothing live changed)
  4  deploy failed its checks and every changed service was rolled back (and reverted in git)
  5  stalled, needs a human: the rollback or the git revert failed
  6  transient: git remote, Docker engine or the running agent unreachable, try again
  7  another reconciler holds the state directory's lock
  8  interrupted by a signal; the next start finishes or rolls back the pass
"""

CONFIG_HELP = """configuration: a YAML file (--config, $RECONCILER_CONFIG,
/etc/reconciler/config.yaml). Every key can be overridden by an environment variable:
RECONCILER_STACK, RECONCILER_GIT__URL, RECONCILER_SYNC__PRUNE=true, ... (sections joined by
a double underscore). See reconciler/config.example.yaml for every key."""

_RAW = argparse.RawDescriptionHelpFormatter


def _global_options(parser: argparse.ArgumentParser, *, after_verb: bool) -> None:
    # after the verb they default to "not given", so they never hide the ones given before it
    default = argparse.SUPPRESS if after_verb else None
    parser.add_argument("--config", type=Path, default=default, help="config file (YAML)")
    parser.add_argument(
        "--log-level", default=default, help="DEBUG, INFO, WARNING, ERROR (overrides log.level)"
    )
    parser.add_argument(
        "--log-format", choices=("json", "text"), default=default, help="overrides log.format"
    )


def _verb(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, **kw: str
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, epilog=EXIT_CODES, formatter_class=_RAW, **kw)  # type: ignore[arg-type]
    _global_options(parser, after_verb=True)
    return parser


def _pass_verbs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = _verb(sub, "run", help="the daemon: a pass every sync.interval (± jitter) until SIGTERM")
    run.add_argument("--dry-run", action="store_true", help="plan and report, never apply")
    sync = _verb(sub, "sync", help="run one pass now, then exit (exit code = its result)")
    sync.add_argument("--dry-run", action="store_true", help="plan and report, never apply")
    diff = _verb(
        sub,
        "diff",
        help="print what a pass would change (exit 0 in sync, 1 changes pending)",
        description="Run a pass's fetch, render and plan phases (the branch fetched into a "
        "temporary checkout, or PATH) and compare with the live stack, field by field. "
        "Changes nothing.",
    )
    diff.add_argument(
        "path", nargs="?", type=Path, help="a local desired-state folder instead of the git branch"
    )
    diff.add_argument("-v", "--verbose", action="store_true", help="list unchanged services too")
    validate = _verb(
        sub,
        "validate",
        help="check a desired-state folder without touching anything (exit 0 valid, 3 invalid)",
    )
    validate.add_argument("path", type=Path, help="e.g. desired-state/production")
    validate.add_argument("--stack", help="stack name to render for (default: config's stack)")
    validate.add_argument(
        "--no-docker",
        action="store_true",
        help="skip `docker stack config` (Docker's own schema check)",
    )
    status = _verb(sub, "status", help="what the agent last recorded (exit 0 Ready, 1 not)")
    status.add_argument("--json", action="store_true", help="the whole status object as JSON")


def _control_verbs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    where = (
        "Acts on the running agent through its HTTP API (http.bind:http.port, or --url), "
        "with the token of http.token_file."
    )
    pause = _verb(sub, "pause", help="suspend applying on the running agent", description=where)
    pause.add_argument("--reason", default="", help="shown on the status page and in `status`")
    resume = _verb(sub, "resume", help="resume applying (and run a pass now)", description=where)
    release = _verb(
        sub,
        "release",
        help="allow a quarantined revision again ('all' for every one)",
        description=where,
    )
    release.add_argument("sha", help="the quarantined commit (a unique prefix will do), or all")
    anyway = _verb(
        sub,
        "sync-anyway",
        help="apply one revision now, outside the sync windows (and run a pass)",
        description=where + " Lets one revision through the sync windows (sync.windows): the "
        "branch head as the agent last fetched it, or SHA. A later head is held again.",
    )
    anyway.add_argument(
        "sha", nargs="?", default="", help="the revision (default: the branch head)"
    )
    for parser in (pause, resume, release, anyway):
        parser.add_argument("--url", help="the agent's API (default: from http.bind/http.port)")


def build() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler",
        description="Keeps a Docker Swarm stack equal to a desired-state folder in git: fetch, "
        "render and validate, plan, apply with docker stack deploy, verify, and on failure roll "
        "every changed service back and revert the commit in git.",
        epilog=CONFIG_HELP + "\n\n" + EXIT_CODES,
        formatter_class=_RAW,
    )
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    _global_options(parser, after_verb=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _pass_verbs(sub)
    _control_verbs(sub)
    return parser
