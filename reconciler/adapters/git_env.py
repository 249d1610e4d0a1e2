"""How git reaches the remote with the agent's credentials, none of them in a URL, a config file
or a process argument: an SSH deploy key through ``GIT_SSH_COMMAND`` (host key pinned by
``git.known_hosts_file``, else trusted on first use), an HTTPS token through a ``GIT_ASKPASS``
script that reads the token file when git asks, a private CA through ``GIT_SSL_CAINFO``."""

from __future__ import annotations

import shlex
import stat
from pathlib import Path

from reconciler.config import GitConfig

_ASKPASS = """#!/bin/sh
# Answers git's credential prompts from the token file (the token is never in a URL or argv).
case "$1" in
  Username*) printf '%s\\n' "$DRIFTLESS_GIT_USERNAME" ;;
  *) head -n 1 "$DRIFTLESS_GIT_TOKEN_FILE" ;;
esac
"""


def git_env(cfg: GitConfig, beside: Path) -> dict[str, str]:
    """The environment of every git command; ``beside``: the folder that holds the checkout (the
    askpass script and the first-use ``known_hosts`` are written there)."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASK_YESNO": "false"}
    if cfg.ssh_key_file is not None:
        known = cfg.known_hosts_file or beside / "known_hosts"
        strict = "yes" if cfg.known_hosts_file else "accept-new"
        env["GIT_SSH_COMMAND"] = shlex.join(
            [
                "ssh",
                "-i",
                str(cfg.ssh_key_file),
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                f"StrictHostKeyChecking={strict}",
                "-o",
                f"UserKnownHostsFile={known}",
            ]
        )
    if cfg.ca_file is not None:
        env["GIT_SSL_CAINFO"] = str(cfg.ca_file)
    if cfg.token_file is not None:
        askpass = beside / "git-askpass.sh"
        if not askpass.exists() or askpass.read_text() != _ASKPASS:
            askpass.parent.mkdir(parents=True, exist_ok=True)
            askpass.write_text(_ASKPASS)
            askpass.chmod(stat.S_IRWXU)
        env.update(
            GIT_ASKPASS=str(askpass),
            DRIFTLESS_GIT_TOKEN_FILE=str(cfg.token_file),
            DRIFTLESS_GIT_USERNAME=cfg.username,
        )
    return env
