"""What every command does first: its configuration (file, environment, command-line
overrides) and logging, masked by the one masker the command's engine uses."""

from __future__ import annotations

import argparse
from dataclasses import replace

from reconciler.config import Config, load_config
from reconciler.logs import setup_logging
from reconciler.masking import Masker


def load(args: argparse.Namespace, *, require_git: bool) -> Config:
    config = load_config(args.config, require_git=require_git)
    log = config.log
    if args.log_level:
        log = replace(log, level=args.log_level)
    if args.log_format:
        log = replace(log, format=args.log_format)
    if getattr(args, "dry_run", False):
        config = replace(config, sync=replace(config.sync, dry_run=True))
    return replace(config, log=log)


def logging_for(config: Config, args: argparse.Namespace, *, quiet: bool = False) -> Masker:
    """Set up logging (a one-shot inspection command logs warnings only, as text) and return
    the masker it masks with."""
    masker = Masker()
    if quiet:
        setup_logging(args.log_level or "WARNING", args.log_format or "text", masker=masker)
    else:
        setup_logging(config.log.level, config.log.format, masker=masker)
    return masker
