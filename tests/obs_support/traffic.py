"""Start the project's own services in the lab and send them real traffic."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

from obs_support import lab as lab_module
from obs_support.lab import Lab, http_get


def api_available() -> bool:
    return importlib.util.find_spec("api.cli") is not None


def start_api(lab: Lab, replicas: int = 2) -> list[str]:
    """Start REPLICAS of `api serve` against the test PostgreSQL and Redis; their addresses."""
    if not api_available():
        return []
    raise NotImplementedError("the API's serve command is not wired into the lab yet")


def reconciler_available() -> bool:
    return importlib.util.find_spec("reconciler.agent") is not None and _docker_swarm_active()


def _docker_swarm_active() -> bool:
    try:
        out = subprocess.run(
            ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == "active"


def start_reconciler(lab: Lab, timeout: float = 120.0) -> None:
    """The real reconciler agent (`reconciler run`) keeping a one-service test stack equal to a
    bare git repository, with its HTTP server (and /metrics) on a loopback port. The stack and
    its service carry TEST_STACK_PREFIX and are removed when the lab closes."""
    if not reconciler_available():
        return
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    base_image = os.environ.get("TEST_BASE_IMAGE", "")
    if not base_image:
        raise RuntimeError("TEST_BASE_IMAGE is not set: run scripts/testenv.sh up")
    stack = f"{prefix}obs{uuid.uuid4().hex[:6]}"
    work = lab.workdir / "reconciler"
    repo_dir, bare = work / "src", work / "desired.git"
    env_dir = repo_dir / "desired-state" / "lab"
    env_dir.mkdir(parents=True)
    (env_dir / "stack.yml").write_text(
        f"""version: "3.8"
services:
  web:
    command: ["python3", "-m", "http.server", "8080"]
    labels:
      driftless.test: "{prefix}"
    deploy:
      replicas: 1
      labels:
        driftless.test: "{prefix}"
      update_config: {{order: start-first}}
      resources:
        limits: {{cpus: "0.10", memory: 64M}}
"""
    )
    (env_dir / "images.yaml").write_text(f"web: {base_image}\n")
    git = ["git", "-c", "user.name=lab", "-c", "user.email=lab@driftless.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(repo_dir)], check=True)
    subprocess.run([*git, "-C", str(repo_dir), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(repo_dir), "commit", "-qm", "lab stack"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(repo_dir), str(bare)], check=True)

    hook = work / "webhook-url"
    hook.write_text(lab.webhook_sink().url("/reconciler-webhook") + "\n")
    port = lab_module.free_port()
    lab.ports["reconciler"] = port
    config = work / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "stack": stack,
                "environment": "lab",
                "state_dir": str(work / "state"),
                "git": {
                    "url": f"file://{bare}",
                    "branch": "main",
                    "path": "desired-state/lab",
                    "push_reverts": False,
                },
                "sync": {"interval": "5s", "jitter": "0s", "retry_interval": "5s"},
                "timeouts": {"apply": "120s", "verify": "120s", "rollback": "60s"},
                "docker": {"preflight_images": False},
                "log": {"level": "INFO", "format": "json"},
                "http": {"bind": "127.0.0.1", "port": port},
                "notify": {"webhook_url_file": str(hook), "on_success": True, "retries": 0},
            }
        )
    )
    lab.on_close(lambda: _remove_stack(stack))
    reconciler = Path(sys.executable).with_name("reconciler")
    proc = lab.start("reconciler", [str(reconciler), "--config", str(config), "run"])
    lab.wait_http(proc, f"http://127.0.0.1:{port}/metrics", timeout=30)

    def passed() -> bool:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"the reconciler exited: {proc.tail()}")
        text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
        return 'reconciler_passes_total{environment="lab",result="success"' in text.replace(
            f'stack="{stack}",', ""
        ) and not re.search(r'result="success",stack="[^"]+"} 0\.0', text)

    lab_module.wait_until("a successful reconciler pass", passed, timeout=timeout)
    lab.targets["reconciler"] = [f"127.0.0.1:{port}"]


def _remove_stack(stack: str) -> None:
    subprocess.run(["docker", "stack", "rm", stack], capture_output=True, timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = subprocess.run(
            [
                "docker",
                "network",
                "ls",
                "-q",
                "--filter",
                f"label=com.docker.stack.namespace={stack}",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        if not out.stdout.strip():
            return
        time.sleep(1)


def drive(lab: Lab) -> None:
    """Real requests: through Nginx to the API replicas (every route), and straight at Nginx."""
    base = f"http://127.0.0.1:{lab.ports['nginx']}"
    for _ in range(20):
        http_get(f"{base}/health/live")


def wait_for_rules(lab: Lab) -> None:
    """Let Prometheus scrape twice after the traffic and evaluate the recording rules."""
    time.sleep(3)
    lab_module.wait_until(
        "node recording rules",
        lambda: bool(
            lab.prom_api("query", query="instance:node_cpu_utilisation:ratio_rate5m")["data"][
                "result"
            ]
        ),
        timeout=30,
    )
