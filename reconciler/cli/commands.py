"""The commands that run the engine: ``run``, ``sync``, ``diff`` and ``validate``. Each opens
the engine through the composition root (:func:`reconciler.wiring.open_engine`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from reconciler.adapters.compose_merge import cli_merge
from reconciler.adapters.folder import repo_root
from reconciler.agent import Agent
from reconciler.cli.setup import load, logging_for
from reconciler.config import Config
from reconciler.control import Component
from reconciler.daemon import Daemon
from reconciler.decisions import RESULT_OF, ExitCode, Halt, exit_code
from reconciler.desired import render, render_options
from reconciler.engine import PassContext
from reconciler.engine.preview import preview
from reconciler.errors import ValidationError
from reconciler.interpolate import escape_dollars
from reconciler.masking import Masker
from reconciler.notify import Notifications
from reconciler.outcome import PassOutcome
from reconciler.plan import describe
from reconciler.web import StatusServer
from reconciler.windows import verdict
from reconciler.wiring import open_engine, state_store
from reconciler.yamlio import dump


def components(config: Config, masker: Masker, *, http: bool = True) -> list[Component]:
    """What runs inside the agent next to the engine: the chat notifications and (for the
    daemon) the HTTP server (status page, JSON API, push webhooks, /metrics, /healthz)."""
    notifications = Notifications.from_config(config, masker)
    if not http:
        return [notifications] if notifications.configured else []
    return [notifications, StatusServer.from_config(config, masker)]


def cmd_run(args: argparse.Namespace) -> int:
    config = load(args, require_git=True)
    masker = logging_for(config, args)

    async def daemon() -> int:
        async with open_engine(config, masker=masker) as engine:
            agent = Agent(engine, components=components(config, masker))
            return await Daemon(agent).run()

    return asyncio.run(daemon())


def cmd_sync(args: argparse.Namespace) -> int:
    config = load(args, require_git=True)
    masker = logging_for(config, args)

    async def once() -> int:
        async with open_engine(config, masker=masker) as engine:
            # the daemon's chat alerts, delivered before the command exits; no HTTP server
            agent = Agent(engine, components=components(config, masker, http=False))
            out = await Daemon(agent).sync_once("manual")
        print(f"{out.result.value}: {out.reason.value}: {out.message}")
        return exit_code(out)

    return asyncio.run(once())


async def _diff(config: Config, path: Path | None, verbose: bool, masker: Masker) -> int:
    status = state_store(config).load_status(config.stack, config.environment)
    with tempfile.TemporaryDirectory(prefix="reconciler-diff-") as tmp:
        async with open_engine(config, masker=masker, scratch=Path(tmp), folder=path) as engine:
            ctx = PassContext(config, engine.ports, engine.store, masker)
            seen = await preview(ctx, status)
    if isinstance(seen, Halt):
        print(f"reconciler: {seen.reason}: {seen.message}", file=sys.stderr)
        for problem in seen.problems:
            print(f"  - {problem}", file=sys.stderr)
        return exit_code(_as_outcome(seen))
    if path is None:
        print(f"revision {seen.head.short} ({seen.head.subject}) of {config.git.branch}")
    if seen.refused is not None:
        print(f"note: {seen.refused.message}")
    window = verdict(config.sync.windows, datetime.now(UTC))
    if not window.open and not seen.planned.plan.empty:
        print(f"note: a pass would not apply this now: {window.message}")
    print(describe(seen.planned.plan, verbose=verbose))
    return ExitCode.OK if seen.planned.plan.empty else ExitCode.PENDING


def _as_outcome(halt: Halt) -> PassOutcome:
    return PassOutcome(RESULT_OF[halt.next], halt.reason, halt.message)


def cmd_diff(args: argparse.Namespace) -> int:
    config = load(args, require_git=args.path is None)
    masker = logging_for(config, args, quiet=True)
    if args.path is not None:  # the folder's place in its repository, as git.path would say
        rel = args.path.resolve().relative_to(repo_root(args.path))
        config = replace(config, git=replace(config.git, path=str(rel)))
    return asyncio.run(_diff(config, args.path, args.verbose, masker))


async def _validate(config: Config, path: Path, docker: bool, masker: Masker) -> int:
    options = render_options(
        config, repo_root(path), merge=cli_merge(config.docker.cli), decrypt=False
    )
    desired = render(path, options)
    if docker:
        with tempfile.TemporaryDirectory(prefix="reconciler-validate-") as tmp:
            async with open_engine(config, masker=masker, scratch=Path(tmp), folder=path) as e:
                rendered = Path(tmp) / "stack.yml"
                rendered.write_text(dump(escape_dollars(desired.document)))
                await e.ports.swarm.validate_compose(rendered)
    for warning in desired.warnings:
        print(f"warning: {warning}")
    print(f"{path}: valid, {len(desired.services)} services (stack {config.stack})")
    for spec in desired.services:
        check = "no HTTP check"
        if spec.health is not None:
            via = f" via network {spec.health.network}" if spec.health.network else ""
            check = f"checks {spec.health.url}{via}"
        print(f"  {spec.name}: {spec.image} ({check})")
    if desired.sealed_secrets:
        files = sorted({s.file for s in desired.sealed_secrets})
        print(
            f"  {len(desired.sealed_secrets)} secret(s) from SOPS files ({', '.join(files)}): "
            "checked as well-formed SOPS with their entries, not decrypted (validate uses no key; "
            "the agent decrypts them)"
        )
    return ExitCode.OK


def cmd_validate(args: argparse.Namespace) -> int:
    config = load(args, require_git=False)
    if args.stack:
        config = replace(config, stack=args.stack)
    masker = logging_for(config, args, quiet=True)
    try:
        return asyncio.run(_validate(config, args.path, not args.no_docker, masker))
    except ValidationError as exc:
        print(f"{args.path}: invalid", file=sys.stderr)
        for problem in exc.problems or (exc.message,):
            print(f"  - {masker.mask(problem)}", file=sys.stderr)
        return ExitCode.REFUSED
