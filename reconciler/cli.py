"""``reconciler``: the command line of the GitOps agent."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from loguru import logger

from reconciler import __version__
from reconciler.config import Config, load_config
from reconciler.control import Component
from reconciler.errors import (
    ConfigError,
    DockerError,
    GitError,
    InterruptedPass,
    LockError,
    ReconcilerError,
    ValidationError,
)
from reconciler.logs import setup_logging
from reconciler.models import PassResult
from reconciler.serialize import to_jsonable

# Exit codes (also in --help and reconciler/README.md)
EXIT_OK = 0
EXIT_PENDING = 1  # diff: changes pending; status: not Ready
EXIT_USAGE = 2  # bad arguments or configuration
EXIT_REFUSED = 3  # invalid desired state / revision refused (nothing live touched)
EXIT_ROLLED_BACK = 4  # the deploy failed its checks and was rolled back
EXIT_STALLED = 5  # needs a human: rollback or revert failed
EXIT_TRANSIENT = 6  # git remote or Docker unreachable: try again later
EXIT_LOCKED = 7  # another agent holds the state directory
EXIT_INTERRUPTED = 8  # stopped by a signal; the next start resumes the pass

EXIT_CODES = """exit codes:
  0  success: applied, in sync, valid, or Ready
  1  diff: changes pending / status: not Ready
  2  usage or configuration error
  3  refused: invalid desired state, missing image, quarantined revision (nothing live changed)
  4  deploy failed its checks and every changed service was rolled back (and reverted in git)
  5  stalled, needs a human: the rollback or the git revert failed
  6  transient: git remote or Docker engine unreachable, try again
  7  another reconciler holds the state directory's lock
  8  interrupted by a signal; the next start finishes or rolls back the pass
"""

CONFIG_HELP = """configuration: a YAML file (--config, $RECONCILER_CONFIG,
/etc/reconciler/config.yaml). Every key can be overridden by an environment variable:
RECONCILER_STACK, RECONCILER_GIT__URL, RECONCILER_SYNC__PRUNE=true, ... (sections joined by
a double underscore). See reconciler/config.example.yaml for every key."""


def _components(config: Config) -> list[Component]:
    """What runs inside the agent next to the engine: the HTTP server (status page, JSON API,
    push webhooks, /metrics, /healthz) and the chat notifications."""
    from reconciler.notify import Notifications
    from reconciler.web import StatusServer

    return [Notifications.from_config(config), StatusServer.from_config(config)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler",
        description="Keeps a Docker Swarm stack equal to a desired-state folder in git: fetch, "
        "render and validate, plan, apply with docker stack deploy, verify, and on failure roll "
        "every changed service back and revert the commit in git.",
        epilog=CONFIG_HELP + "\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    parser.add_argument("--config", type=Path, help="config file (YAML)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (overrides log.level)")
    parser.add_argument("--log-format", choices=("json", "text"), help="overrides log.format")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="the daemon: a pass every sync.interval (± jitter) until SIGTERM",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--dry-run", action="store_true", help="plan and report, never apply")

    sync = sub.add_parser(
        "sync",
        help="run one pass now, then exit (exit code = its result)",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sync.add_argument("--dry-run", action="store_true", help="plan and report, never apply")

    diff = sub.add_parser(
        "diff",
        help="print what a pass would change (exit 0 in sync, 1 changes pending)",
        description="Fetch the branch into a temporary checkout (or take PATH), render it and "
        "compare it with the live stack, field by field. Changes nothing.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    diff.add_argument(
        "path", nargs="?", type=Path, help="a local desired-state folder instead of the git branch"
    )
    diff.add_argument("-v", "--verbose", action="store_true", help="list unchanged services too")

    validate = sub.add_parser(
        "validate",
        help="check a desired-state folder without touching anything (exit 0 valid, 3 invalid)",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("path", type=Path, help="e.g. desired-state/production")
    validate.add_argument("--stack", help="stack name to render for (default: config's stack)")
    validate.add_argument(
        "--no-docker",
        action="store_true",
        help="skip `docker stack config` (Docker's own schema check)",
    )

    status = sub.add_parser(
        "status",
        help="what the agent last recorded (exit 0 Ready, 1 not)",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--json", action="store_true", help="the whole status object as JSON")
    return parser


def _load(args: argparse.Namespace, *, require_git: bool) -> Config:
    config = load_config(args.config, require_git=require_git)
    log = config.log
    if args.log_level:
        log = replace(log, level=args.log_level)
    if args.log_format:
        log = replace(log, format=args.log_format)
    if getattr(args, "dry_run", False):
        config = replace(config, sync=replace(config.sync, dry_run=True))
    return replace(config, log=log)


def _exit_for(result: PassResult, stalled: bool) -> int:
    if stalled and result in (PassResult.FAILED, PassResult.ROLLED_BACK):
        return EXIT_STALLED
    return {
        PassResult.SUCCESS: EXIT_OK,
        PassResult.NOOP: EXIT_OK,
        PassResult.REFUSED: EXIT_REFUSED,
        PassResult.ROLLED_BACK: EXIT_ROLLED_BACK,
        PassResult.FAILED: EXIT_STALLED,
        PassResult.ERROR: EXIT_TRANSIENT,
    }[result]


# ------------------------------------------------------------------ commands


def cmd_run(args: argparse.Namespace) -> int:
    from reconciler.agent import Agent

    config = _load(args, require_git=True)
    setup_logging(config.log.level, config.log.format)
    agent = Agent(config, components=_components(config))
    return asyncio.run(agent.run())


def cmd_sync(args: argparse.Namespace) -> int:
    from reconciler.agent import Agent
    from reconciler.notify import Notifications

    config = _load(args, require_git=True)
    setup_logging(config.log.level, config.log.format)
    # the chat alerts of the daemon, delivered before the command exits; no HTTP server
    notifications = Notifications.from_config(config)
    agent = Agent(config, components=[notifications] if notifications.configured else [])
    report = asyncio.run(agent.sync_once("manual"))
    out = report.outcome
    print(f"{out.result.value}: {out.reason.value}: {out.message}")
    return _exit_for(out.result, out.stalled)


async def _diff(config: Config, path: Path | None, verbose: bool) -> int:
    from reconciler.adapters.clock import SystemClock
    from reconciler.adapters.git import GitRepo
    from reconciler.adapters.swarm import SwarmAdapter
    from reconciler.desired import RenderOptions, render
    from reconciler.plan import describe, plan
    from reconciler.state import StateStore

    swarm = SwarmAdapter(clock=SystemClock(), cli=config.docker.cli, host=config.docker.host)
    try:
        with tempfile.TemporaryDirectory(prefix="reconciler-diff-") as tmp:
            if path is None:
                repo = GitRepo(config.git, Path(tmp) / "checkout")
                try:
                    head = await repo.fetch()
                finally:
                    repo.close()
                folder, root = repo.workdir / config.git.path, repo.workdir
                print(f"revision {head.short} ({head.subject}) of {config.git.branch}")
                status_path = StateStore(config.state_dir).status_path
                if status_path.exists():
                    from reconciler.status import Status

                    q = Status.from_dict(json.loads(status_path.read_text())).is_quarantined(
                        head.sha
                    )
                    if q is not None:
                        print(f"note: this revision is quarantined ({q.reason}: {q.message})")
            else:
                folder, root = path, _repo_root(path)
            opts = RenderOptions(
                stack=config.stack,
                environment=config.environment,
                variables=config.render.variables,
                default_timeout=config.health.timeout,
                default_interval=config.health.interval,
                repo_root=root,
            )
            desired = render(folder, opts)
            live = await swarm.live_state(config.stack)
            the_plan = plan(desired, live, prune=config.sync.prune)
            print(describe(the_plan, verbose=verbose))
            return EXIT_OK if the_plan.empty else EXIT_PENDING
    finally:
        await swarm.close()


def _repo_root(path: Path) -> Path:
    for parent in [path.resolve(), *path.resolve().parents]:
        if (parent / ".git").exists():
            return parent
    return path.resolve()


def cmd_diff(args: argparse.Namespace) -> int:
    config = _load(args, require_git=args.path is None)
    setup_logging(args.log_level or "WARNING", args.log_format or "text")
    return asyncio.run(_diff(config, args.path, args.verbose))


async def _validate(config: Config, path: Path, stack: str | None, docker: bool) -> int:
    from reconciler.adapters.clock import SystemClock
    from reconciler.adapters.swarm import SwarmAdapter
    from reconciler.desired import RenderOptions, render
    from reconciler.interpolate import escape_dollars
    from reconciler.yamlio import dump

    opts = RenderOptions(
        stack=stack or config.stack,
        environment=config.environment,
        variables=config.render.variables,
        default_timeout=config.health.timeout,
        default_interval=config.health.interval,
        repo_root=_repo_root(path),
    )
    desired = render(path, opts)
    if docker:
        swarm = SwarmAdapter(clock=SystemClock(), cli=config.docker.cli, host=config.docker.host)
        with tempfile.TemporaryDirectory(prefix="reconciler-validate-") as tmp:
            rendered = Path(tmp) / "stack.yml"
            rendered.write_text(dump(escape_dollars(desired.document)))
            await swarm.validate_compose(rendered)
    for warning in desired.warnings:
        print(f"warning: {warning}")
    print(f"{path}: valid, {len(desired.services)} services (stack {opts.stack})")
    for spec in desired.services:
        check = "no HTTP check"
        if spec.health is not None:
            via = f" via network {spec.health.network}" if spec.health.network else ""
            check = f"checks {spec.health.url}{via}"
        print(f"  {spec.name}: {spec.image} ({check})")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    config = _load(args, require_git=False)
    setup_logging(args.log_level or "WARNING", args.log_format or "text")
    try:
        return asyncio.run(_validate(config, args.path, args.stack, not args.no_docker))
    except ValidationError as exc:
        print(f"{args.path}: invalid", file=sys.stderr)
        for problem in exc.problems or (exc.message,):
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_REFUSED


def cmd_status(args: argparse.Namespace) -> int:
    from reconciler.state import StateStore
    from reconciler.status import ConditionType

    config = _load(args, require_git=False)
    store = StateStore(config.state_dir)
    if not store.status_path.exists():
        print(f"no status recorded yet in {config.state_dir}", file=sys.stderr)
        return EXIT_PENDING
    status = store.load_status(config.stack, config.environment)
    journal = store.load_journal()
    if args.json:
        data = status.to_dict()
        data["journal"] = to_jsonable(journal) if journal else None
        if journal is not None:
            data["journal"].pop("previous", None)
        print(json.dumps(data, indent=2))
    else:
        print(_status_text(status, journal is not None))
    return EXIT_OK if status.is_true(ConditionType.READY) else EXIT_PENDING


def _status_text(status: object, resuming: bool) -> str:
    from reconciler.status import Status

    assert isinstance(status, Status)
    lines = [
        f"stack {status.stack} ({status.environment})" + ("  [PAUSED]" if status.paused else "")
    ]
    for label, rev in (
        ("desired", status.desired),
        ("last applied", status.last_applied),
        ("last attempted", status.last_attempted),
    ):
        if rev is not None:
            lines.append(f"  {label + ':':16}{rev.short}  {rev.subject}  ({rev.author})")
    for cond in status.conditions:
        state = {True: "True", False: "False", None: "Unknown"}[cond.status]
        lines.append(f"  {cond.type.value + ':':16}{state:8}{cond.reason}  {cond.message}".rstrip())
    if status.last_pass_at:
        lines.append(
            f"  last pass:      {status.last_pass_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"{status.last_result.value if status.last_result else '-'}"
        )
    if resuming:
        lines.append("  an interrupted pass will be resumed at the next start")
    if status.inventory:
        lines.append("services:")
        for s in status.inventory:
            sync = "in sync" if s.in_sync else s.action
            health = {True: "healthy", False: "UNHEALTHY", None: "-"}[s.healthy]
            lines.append(
                f"  {s.name:24} {s.replicas_running}/{s.replicas_desired:<4} {health:9} "
                f"{sync:10} {s.image or s.live_image}"
            )
    if status.quarantine:
        lines.append("quarantined revisions:")
        lines += [f"  {q.revision.short}  {q.reason}: {q.message}" for q in status.quarantine]
    if status.reverts:
        lines.append("reverts pushed:")
        lines += [
            f"  {r.commit[:12]} reverts {r.revision.short}: {r.reason}" for r in status.reverts
        ]
    if status.history:
        lines.append("history (newest first):")
        for h in status.history[:10]:
            short = h.revision.short if h.revision else "-"
            count = f" x{h.count}" if h.count > 1 else ""
            lines.append(
                f"  {h.finished_at:%Y-%m-%d %H:%M:%S}  {short}  {h.result.value:11} "
                f"{h.reason}{count}  {h.message}"
            )
    return "\n".join(lines)


COMMANDS = {
    "run": cmd_run,
    "sync": cmd_sync,
    "diff": cmd_diff,
    "validate": cmd_validate,
    "status": cmd_status,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"reconciler: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LockError as exc:
        print(f"reconciler: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except (InterruptedPass, KeyboardInterrupt):
        print("reconciler: interrupted; the next start resumes the pass", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (GitError, DockerError) as exc:
        print(f"reconciler: {exc}", file=sys.stderr)
        return EXIT_TRANSIENT
    except ValidationError as exc:
        print(f"reconciler: {exc}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_REFUSED
    except ReconcilerError as exc:
        print(f"reconciler: {exc.reason.value}: {exc}", file=sys.stderr)
        return EXIT_STALLED
    except BrokenPipeError:  # `reconciler status | head`
        return EXIT_OK
    finally:
        logger.complete()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
