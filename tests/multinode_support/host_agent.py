"""The agent as ``systemd/reconciler.service`` runs it on one VM, on the first manager of the
multi-node Swarm: ``reconciler --config FILE run``, a process on the node, the file store in its
state directory, deploying the same stack from the same git remote as the tests' agent service
(``multinode_support.agent``). What ``runbooks/SCALING.md`` moves from, to the Swarm service.

What differs from a VM, because of where it runs: the process runs in the node's network
namespace (``nsenter``), where its engine publishes the probe container's port on loopback; its
engine is ``DOCKER_HOST`` (the node's socket), not ``/var/run/docker.sock``; it runs as root
(the repositories belong to the service's user, so git is told they are safe); its page listens
on the node's address, so the commands of the runbook (``reconciler pause``, ``status``) reach it
from this machine with the same configuration file.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from web_support.agent import stop_process

from multinode_support.agent import AgentService
from multinode_support.cluster import Node

PORT = 9481  #: not the service's 9480: both may listen on the node while the move happens
EXE = Path(sys.executable).with_name("reconciler")


class HostAgent:
    """The agent process on ``node``, its files under ``<service.work>/host``."""

    def __init__(self, service: AgentService, node: Node) -> None:
        self.node = node
        self.dir = service.work / "host"
        self.dir.mkdir(exist_ok=True)
        self.token = self.dir / "api_token"
        self.token.write_text(secrets.token_hex(16))
        self.token.chmod(0o600)
        self.gitconfig = self.dir / "gitconfig"
        self.gitconfig.write_text("[safe]\n\tdirectory = *\n")
        self.log = self.dir / "agent.log"
        self.config = self.dir / "config.yaml"
        self.config.write_text(yaml.safe_dump(self._config(service)))
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self, service: AgentService) -> dict[str, Any]:
        """``/etc/reconciler/config.yaml`` of a VM, with the service's timings."""
        return {
            "stack": service.app,
            "environment": "e2e",
            "state_dir": str(self.dir / "state"),
            "git": {"url": service.remote.url, "branch": "main", "path": service.path},
            "sync": {"interval": "2s", "jitter": "0s", "retry_interval": "2s"},
            "timeouts": {"verify": "90s", "rollback": "90s"},
            "health": {"probe_image": service.images["agent"]},
            "docker": {"host": self.node.url},
            "http": {"bind": self.node.address, "port": PORT, "token_file": str(self.token)},
            "state": {"store": "file"},
            "log": {"format": "json"},
        }

    @property
    def url(self) -> str:
        return f"http://{self.node.address}:{PORT}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
        return env | {"DOCKER_HOST": self.node.url, "GIT_CONFIG_GLOBAL": str(self.gitconfig)}

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["nsenter", f"--net=/var/run/netns/{self.node.name}",
                 str(EXE), "--config", str(self.config), "run"],
                stdout=out, stderr=subprocess.STDOUT, env=self._env(),
            )  # fmt: skip

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``reconciler --config FILE ARGS...`` as a person on the VM runs it."""
        return subprocess.run(
            [str(EXE), "--config", str(self.config), *args],
            capture_output=True, text=True, timeout=60, env=self._env(), check=False,
        )  # fmt: skip

    def recorded(self) -> dict[str, Any] | None:
        """``reconciler status --json``: what the agent last recorded in its state directory."""
        result = self.cli("status", "--json")
        return json.loads(result.stdout) if result.stdout.strip() else None

    def page(self) -> dict[str, Any] | None:
        try:
            response = httpx.get(f"{self.url}/api/status", timeout=5)
            response.raise_for_status()
        except httpx.HTTPError:
            return None
        data: dict[str, Any] = response.json()
        return data

    def applied(self, sha: str) -> bool:
        status = self.page()
        return bool(status and (status["last_applied"] or {}).get("sha") == sha)

    def stop(self, grace: float = 60) -> int | None:
        """SIGTERM, as ``systemctl stop`` sends it; its exit code."""
        return None if self.proc is None else stop_process(self.proc, grace=grace)

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
