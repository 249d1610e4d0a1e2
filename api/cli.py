"""``api serve | migrate | create-admin``: the console script of the API image."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from loguru import logger

from api.errors import ApiError, SettingsError, StoreUnavailable
from api.logs import configure_logging
from api.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="api",
        description="The Driftless shop API. Configuration comes from the environment "
        "(see api/README.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve HTTP until SIGTERM, then drain and exit")
    serve.add_argument("--host", help="listen address (default: $HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="listen port (default: $PORT or 3000)")
    commands.add_parser("migrate", help="migrate the database schema to this build's head")
    admin = commands.add_parser(
        "create-admin",
        help="create an administrator, or promote an existing user and reset the password",
    )
    admin.add_argument("--email", required=True)
    admin.add_argument("--name", default="Administrator")
    secret = admin.add_mutually_exclusive_group()
    secret.add_argument("--password", help="visible to other local users in ps; prefer the file")
    secret.add_argument("--password-file", type=Path, help="read the password from this file")
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    environ = dict(os.environ if env is None else env)
    if args.command == "serve":
        if args.host:
            environ["HOST"] = args.host
        if args.port:
            environ["PORT"] = str(args.port)
    try:
        settings = Settings.from_env(environ)
    except SettingsError as exc:
        print(f"api: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log)
    try:
        if args.command == "serve":
            from api.server import serve

            return serve(settings)
        if args.command == "migrate":
            from api.db.migrate import head_revision, upgrade_when_reachable

            upgrade_when_reachable(settings.database.url, settings.database.migrate_wait)
            logger.info("schema at revision {}", head_revision())
            return 0
        password = _admin_password(args)
        from api.admin import create_admin

        return asyncio.run(create_admin(settings, args.email, args.name, password))
    except (StoreUnavailable, ApiError) as exc:
        logger.error("{}", exc)
        return 1


def _admin_password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return str(args.password)
    if args.password_file is not None:
        return str(args.password_file.read_text().rstrip("\r\n"))
    if sys.stdin.isatty():
        return getpass.getpass("password for the administrator: ")
    return sys.stdin.readline().rstrip("\r\n")


if __name__ == "__main__":
    sys.exit(main())
