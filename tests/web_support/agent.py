"""The reconciler run as people run it (``reconciler run --config FILE``, a real process) against
a real bare git repository and the real Swarm, with its HTTP server on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scripts import remove_stack as teardown


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 30
) -> int:
    """Send SIG (unless PROC has ended), wait GRACE seconds for it to exit, then kill it."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Alice Operator",
        "GIT_AUTHOR_EMAIL": "alice@example.org",
        "GIT_COMMITTER_NAME": "Alice Operator",
        "GIT_COMMITTER_EMAIL": "alice@example.org",
    }
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


@dataclass
class Remote:
    """A bare repository (what the agent fetches) and a work clone (what a person pushes from)."""

    bare: Path
    work: Path
    folder: str = "desired-state/test"

    @classmethod
    def create(cls, root: Path) -> Remote:
        bare, work = root / "remote.git", root / "work"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        subprocess.run(
            ["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True
        )
        git(work, "checkout", "-q", "-b", "main")
        return cls(bare, work)

    def commit(self, files: dict[str, str], subject: str) -> str:
        if git(self.work, "branch", "--list", "-r"):
            git(self.work, "pull", "-q", "--rebase", "origin", "main")
        for name, text in files.items():
            path = self.work / self.folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", subject)
        git(self.work, "push", "-q", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")

    def head(self) -> str:
        return git(self.bare, "rev-parse", "main")

    def log(self) -> list[str]:
        return git(self.bare, "log", "--format=%H %s", "main").splitlines()


def stack_file(prefix: str, *, command: list[str], env: dict[str, str]) -> str:
    service = {
        "command": command,
        "environment": env,
        "labels": {"driftless.test": prefix},
        "deploy": {
            "replicas": 1,
            "labels": {"driftless.test": prefix},
            "update_config": {"order": "start-first", "monitor": "3s", "failure_action": "pause"},
            "restart_policy": {"condition": "on-failure", "delay": "1s"},
        },
        "stop_grace_period": "2s",
    }
    doc = {
        "version": "3.8",
        "services": {"web": service},
        "networks": {"default": {"driver": "overlay", "labels": {"driftless.test": prefix}}},
    }
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass
class AgentProcess:
    root: Path
    stack: str
    port: int
    token: str
    webhook_secret: str
    gitlab_token: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    _out: Any = None
    secrets: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, config: dict[str, Any]) -> None:
        path = self.root / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        exe = Path(sys.executable).with_name("reconciler")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [str(exe), "--config", str(path), "--log-format", "text", "run"],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the agent exited: {self.log.read_text()[-3000:]}")
            try:
                self.get("/healthz")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise AssertionError(f"the agent did not listen: {self.log.read_text()[-3000:]}")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        code = stop_process(self.proc)
        if self._out is not None:
            self._out.close()
            self._out = None
        return code

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(  # noqa: S310 - http on loopback
            self.url + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def get(self, path: str) -> Any:
        status, _, body = self.request("GET", path)
        if status != 200:
            raise AssertionError(f"GET {path}: {status} {body[:300]!r}")
        return json.loads(body) if path.startswith(("/api", "/healthz")) else body.decode()

    def post(self, path: str, *, token: str | None = None, **headers: str) -> tuple[int, Any]:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        status, _, body = self.request("POST", path, b"", headers)
        return status, json.loads(body) if body else None

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = self.get("/api/status")
        return data

    def wait(self, what: str, check: Any, timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status()
            if check(status):
                return status
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        keys = ("phase", "last_result", "last_reason", "last_message", "history")
        raise AssertionError(
            f"timed out waiting for {what}; last status: "
            f"{json.dumps({k: status.get(k) for k in keys})[:3000]}"
            f"\nlog tail:\n{self.log.read_text()[-4000:]}"
        )

    def last_pass(self) -> str | None:
        """When the last pass ended (repeated no-op passes are merged in the history, so
        counting entries does not tell that a pass ran)."""
        value: str | None = self.status()["last_pass_at"]
        return value

    def wait_pass(self, since: str | None, what: str, timeout: float = 90.0) -> dict[str, Any]:
        """The status once a pass that ended after ``since`` is recorded and the agent idles."""
        return self.wait(
            what, lambda s: s["last_pass_at"] != since and s["phase"] is None, timeout=timeout
        )


def remove_stack(stack: str) -> None:
    teardown.remove_stack(stack, extra_labels=(f"driftless.probe={stack}",))
