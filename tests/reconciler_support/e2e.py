"""What the reconciler e2e tests share: the test service's images (built once per session from
the local base image, pushed to the local registry), a git remote holding a small two-service
stack, the reconciler driven through its CLI like a user would, and Docker read-outs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler_support.gitrepo import Remote, git
from scripts.remove_stack import remove_stack

APP_DIR = Path(__file__).resolve().parents[1] / "e2e" / "reconciler_e2e" / "app"
STACK_DIR = "desired-state/e2e"


def sh(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def build_images(registry: str, base_image: str, prefix: str) -> dict[str, str]:
    """Tags 1 and 2 are good; 3 is bad (its /health answers 500 while the process runs)."""
    repo = f"{registry}/{prefix}/reconciler-e2e-app"
    images = {}
    for tag, mode in (("1", "good"), ("2", "good"), ("3", "bad")):
        ref = f"{repo}:{tag}"
        sh("docker", "build", "-q", "-t", ref, "--build-arg", f"PYTHON_IMAGE={base_image}",
           "--build-arg", f"APP_VERSION={tag}", "--build-arg", f"APP_MODE={mode}",
           "--label", f"driftless.test={prefix}", str(APP_DIR))  # fmt: skip
        sh("docker", "push", "-q", ref)
        images[tag] = ref
    images["missing"] = f"{repo}:does-not-exist"
    return images


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: a Docker HEALTHCHECK on /health (the bad image answers 500 there, so its tasks turn unhealthy)
_DOCKER_HEALTHCHECK = """    healthcheck:
      test:
        - CMD
        - python3
        - -c
        - import urllib.request as u; u.urlopen('http://127.0.0.1:8080/health', timeout=2)
      interval: 1s
      timeout: 3s
      retries: 1
"""


def stack_yaml(
    port: int,
    prefix: str,
    *,
    api: bool = True,
    web_timeout: str = "6s",
    swarm_health: bool = False,
    extra: str = "",
) -> str:
    """``web`` is checked directly on its host-mode port; ``api`` (2 replicas) through the
    probe container on the attachable network, and must serve the version of its image tag.

    ``swarm_health``: ``web`` has no HTTP check of the reconciler but a Docker HEALTHCHECK and
    ``failure_action: rollback``, so only Swarm notices a bad image (and rolls it back itself).
    ``extra`` is appended to ``web``'s definition (indented under the service)."""
    if swarm_health:
        checks = _DOCKER_HEALTHCHECK
        labels = ""
        update = "{order: stop-first, monitor: 5s, failure_action: rollback}"
    else:
        checks = ""
        labels = f"""      labels:
        driftless.health.url: "http://127.0.0.1:{port}/health"
        driftless.health.timeout: "{web_timeout}"
        driftless.health.interval: "500ms"
"""
        update = "{order: stop-first, monitor: 1s}"
    text = f"""version: "3.8"
services:
  web:
    labels: {{driftless.test: {prefix}}}
    ports:
      - {{target: 8080, published: {port}, mode: host}}
    networks: [back]
{checks}{extra}    deploy:
      endpoint_mode: dnsrr
{labels}      update_config: {update}
      rollback_config: {{order: stop-first, monitor: 1s}}
"""
    if api:
        text += f"""  api:
    labels: {{driftless.test: {prefix}}}
    environment:
      LOG_LEVEL: info
    networks: [back]
    deploy:
      endpoint_mode: dnsrr
      replicas: 2
      labels:
        driftless.health.url: "http://api:8080/version"
        driftless.health.network: back
        driftless.health.expect-version: "{{tag}}"
        driftless.health.timeout: "6s"
        driftless.health.interval: "500ms"
        # these tests are about the pass around the rollout (test_progressive.py: canaries)
        driftless.rollout.canary: "0"
      update_config: {{order: start-first, parallelism: 2, monitor: 1s}}
      rollback_config: {{order: start-first, parallelism: 2, monitor: 1s}}
"""
    text += """networks:
  back:
    driver: overlay
    attachable: true
"""
    return text


def images_yaml(web: str, api: str | None) -> str:
    return f"web: {web}\n" + (f"api: {api}\n" if api else "")


@dataclass
class Env:
    """One test's world: a stack name, a git remote, a state directory and a config file."""

    stack: str
    prefix: str
    root: Path
    remote: Remote
    images: dict[str, str]
    port: int
    base_image: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    def write_config(self, **overrides: Any) -> None:
        sync = {
            "interval": "2s",
            "jitter": "0s",
            "retry_interval": "2s",
            "prune": False,
            "self_heal": True,
        }
        sync.update(overrides.pop("sync", {}))
        config = {
            "stack": self.stack,
            "environment": "e2e",
            "state_dir": str(self.state_dir),
            "git": {"url": self.remote.url, "branch": "main", "path": STACK_DIR},
            "sync": sync,
            "timeouts": {"apply": "120s", "verify": "90s", "rollback": "90s"},
            "health": {"probe_image": self.base_image, "timeout": "6s", "interval": "500ms"},
            "docker": {"probe_labels": {"driftless.test": self.prefix}},
            "log": {"format": "json", "level": "INFO"},
            "http": {"bind": "127.0.0.1", "port": self.settings.get("http_port", free_port())},
        }
        config.update(overrides)
        self.settings["http_port"] = config["http"]["port"]  # type: ignore[index]
        self.config_path.write_text(json.dumps(config))

    # -------------------------------------------------------------- git

    def commit(
        self,
        message: str,
        *,
        web: str | None = None,
        api: str | None = "same",
        stack: str | None = None,
        images: str | None = None,
    ) -> str:
        files: dict[str, str] = {}
        if stack is not None:
            files[f"{STACK_DIR}/stack.yml"] = stack
        if images is not None:
            files[f"{STACK_DIR}/images.yaml"] = images
        elif web is not None:
            files[f"{STACK_DIR}/images.yaml"] = images_yaml(web, api)
        return self.remote.write(files, message)

    # -------------------------------------------------------------- the CLI

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reconciler.cli", "--config", str(self.config_path), *args],
            capture_output=True, text=True, timeout=timeout, check=False, env=_env(),
        )  # fmt: skip

    def start(self, *args: str) -> subprocess.Popen[str]:
        with (self.root / "agent.log").open("a") as log:  # the child keeps its own descriptor
            return subprocess.Popen(
                [sys.executable, "-m", "reconciler.cli", "--config", str(self.config_path), *args],
                stdout=log, stderr=subprocess.STDOUT, text=True, env=_env(),
            )  # fmt: skip

    def status(self) -> dict[str, Any]:
        result = self.cli("status", "--json")
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def journal(self) -> dict[str, Any] | None:
        path = self.state_dir / "journal.json"
        return json.loads(path.read_text()) if path.exists() else None

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.settings['http_port']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()  # type: ignore[no-any-return]

    # -------------------------------------------------------------- Docker read-outs

    def service(self, name: str) -> dict[str, Any] | None:
        result = sh("docker", "service", "inspect", f"{self.stack}_{name}", check=False)
        if result.returncode != 0:
            return None
        return json.loads(result.stdout)[0]  # type: ignore[no-any-return]

    def image_tag(self, name: str) -> str | None:
        svc = self.service(name)
        if svc is None:
            return None
        image = svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]
        return str(image.rsplit(":", 1)[1])

    def replicas(self, name: str) -> int | None:
        svc = self.service(name)
        return None if svc is None else int(svc["Spec"]["Mode"]["Replicated"]["Replicas"])

    def running_tags(self, name: str) -> list[str]:
        """The image tag of every running task of a service."""
        out = sh("docker", "service", "ps", f"{self.stack}_{name}", "--filter",
                 "desired-state=running", "--format", "{{.Image}} {{.CurrentState}}",
                 check=False).stdout  # fmt: skip
        return sorted(
            line.split()[0].split("@")[0].rsplit(":", 1)[1]
            for line in out.splitlines()
            if " Running" in f" {line.split(' ', 1)[1]}"
        )

    def served_version(self) -> str:
        url = f"http://127.0.0.1:{self.port}/version"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(json.loads(response.read())["version"])

    def cleanup(self) -> None:
        remove_stack(self.stack, extra_labels=(f"driftless.probe={self.stack}",))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout=timeout)


def revert_commits(remote: Remote) -> list[str]:
    return [line for line in remote.log("%H %s") if " Revert " in f" {line.split(' ', 1)[1]}"]


__all__ = ["Env", "Remote", "git"]
