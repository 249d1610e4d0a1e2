"""``reconciler pause``, ``resume``, ``release`` and ``sync-anyway``: act on the running agent
through its HTTP API (the same actions as the status page's buttons), so the command line and
the page never disagree about what the agent does."""

from __future__ import annotations

import argparse
import asyncio

from reconciler.adapters.agent_api import AgentApi
from reconciler.cli.setup import load, logging_for
from reconciler.config import Config, read_secret
from reconciler.config_sections import HttpConfig
from reconciler.decisions import ExitCode
from reconciler.errors import ConfigError
from reconciler.masking import Masker


def api_url(http: HttpConfig) -> str:
    """The agent's API as seen from this machine (a wildcard bind is reached on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(http.bind, http.bind)  # noqa: S104
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{http.port}"


def _api(config: Config, args: argparse.Namespace, masker: Masker) -> AgentApi:
    if config.http.token_file is None:
        raise ConfigError(
            "the agent's API needs its token: set http.token_file (the agent's read-only "
            "without one)"
        )
    token = read_secret(config.http.token_file)
    masker.register(token)
    return AgentApi(args.url or api_url(config.http), token, masker)


def _act(args: argparse.Namespace, path: str, body: dict[str, str] | None = None) -> int:
    config = load(args, require_git=False)
    masker = logging_for(config, args, quiet=True)
    reply = asyncio.run(_api(config, args, masker).post(path, body))
    if reply.status >= 400:
        print(f"reconciler: {reply.message}")
        return ExitCode.USAGE
    print(reply.message)
    return ExitCode.OK


def cmd_pause(args: argparse.Namespace) -> int:
    return _act(args, "/api/pause", {"reason": args.reason})


def cmd_resume(args: argparse.Namespace) -> int:
    return _act(args, "/api/resume")


def cmd_release(args: argparse.Namespace) -> int:
    return _act(args, f"/api/quarantine/{args.sha}/release")


def cmd_sync_anyway(args: argparse.Namespace) -> int:
    return _act(args, "/api/sync-anyway", {"revision": args.sha} if args.sha else None)
