"""The reconciler image as the optional Swarm service of the production stack runs it: on a
manager, as root only long enough to join the docker socket's group, configured from the
environment, deploying a stack from git through the mounted socket, keeping its state in the
Swarm (``state.store: swarm``) under a lease that names its task and node.

The service definition below keeps the production one's user, socket mount, placement and
RECONCILER_* settings; the git remote is a bare repository bind-mounted into the task (no git
server is reachable from here) and the deployed stack is one small service.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from stack_harness import ROOT, run, wait_until

from scripts.remove_stack import remove_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PRODUCTION = yaml.safe_load((ROOT / "desired-state" / "base" / "stack.yml").read_text())


def agent_stack(image: str, app_stack: str, repo: Path) -> dict[str, object]:
    prod = PRODUCTION["services"]["reconciler"]
    env = {
        **{k: v for k, v in prod["environment"].items() if not k.endswith("_FILE")},
        "RECONCILER_STACK": app_stack,
        "RECONCILER_ENVIRONMENT": "e2e",
        "RECONCILER_GIT__URL": "file:///repo/remote.git",
        "RECONCILER_GIT__BRANCH": "main",
        "RECONCILER_GIT__PATH": "desired-state/e2e",
        "RECONCILER_SYNC__INTERVAL": "3s",
        "RECONCILER_SYNC__RETRY_INTERVAL": "3s",
    }
    return {
        "version": "3.8",
        "services": {
            "reconciler": {
                "image": image,
                "user": prod["user"],
                "environment": env,
                # named (not the image's anonymous volume): removed with the stack
                "volumes": [v for v in prod["volumes"] if "docker.sock" in v]
                + ["state:/var/lib/reconciler", f"{repo}:/repo:ro"],
                "deploy": {
                    "replicas": 1,
                    "placement": prod["deploy"]["placement"],
                    "labels": {"driftless.test": os.environ["TEST_STACK_PREFIX"]},
                },
            }
        },
        "volumes": {"state": {}},
    }


@pytest.fixture
def names(registry: str) -> Iterator[tuple[str, str]]:
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    agent, app = f"{prefix}rs", f"{prefix}rsapp"
    try:
        yield agent, app
    finally:
        remove_stack(agent, volumes=True)  # first: it would deploy the app again
        remove_stack(app, volumes=True)
        run("docker", "service", "rm", f"{app}-agent-state", check=False)
        configs = run("docker", "config", "ls", "-q", "--filter", f"label=io.driftless.state={app}")
        for config in configs.split():
            run("docker", "config", "rm", config, check=False)


def test_the_reconciler_service_deploys_a_stack_from_git(
    registry: str, names: tuple[str, str]
) -> None:
    agent, app = names
    env = {**os.environ, "REGISTRY": registry}
    run(ROOT / "scripts" / "build-images.sh", "app", "e2e", env=env, timeout=1800)
    run(ROOT / "scripts" / "build-images.sh", "stand-ins", env=env, timeout=1800)
    work = Path(tempfile.mkdtemp(prefix=f"{agent}-"))
    try:
        # the desired state: one Redis (a local stand-in image) on its own network
        clone = work / "clone"
        run("git", "init", "-q", "--bare", "-b", "main", work / "remote.git")
        run("git", "clone", "-q", f"file://{work / 'remote.git'}", clone)
        state = clone / "desired-state" / "e2e"
        state.mkdir(parents=True)
        (state / "stack.yml").write_text(
            yaml.safe_dump(
                {
                    "version": "3.8",
                    "services": {
                        "cache": {
                            "networks": ["net"],
                            "volumes": ["data:/data"],
                            "deploy": {"replicas": 1, "endpoint_mode": "dnsrr"},
                        }
                    },
                    "networks": {"net": {"driver": "overlay"}},
                    "volumes": {"data": {}},
                }
            )
        )
        (state / "images.yaml").write_text(f"cache: {registry}/driftless/redis:local\n")
        for args in (
            ("config", "user.name", "e2e"),
            ("config", "user.email", "e2e@driftless.invalid"),
            ("add", "-A"),
            ("commit", "-qm", "One cache"),
            ("push", "-q", "origin", "main"),
        ):
            run("git", "-C", clone, *args)
        sha = run("git", "-C", work / "remote.git", "rev-parse", "main").strip()
        # the agent runs as uid 10002; git refuses a repository another user owns
        shutil.chown(work, 10002)
        for path in (work / "remote.git").rglob("*"):
            shutil.chown(path, 10002)
        shutil.chown(work / "remote.git", 10002)

        compose = work / "agent.yml"
        image = f"{registry}/driftless/reconciler:e2e"
        compose.write_text(yaml.safe_dump(agent_stack(image, app, work)))
        run("docker", "stack", "deploy", "-c", compose, agent)

        def applied() -> str:
            out = run("docker", "service", "ls", "-q", "--filter", f"name={app}_cache")
            if not out.strip():
                return ""
            spec = json.loads(run("docker", "service", "inspect", f"{app}_cache"))[0]["Spec"]
            return str(spec.get("Labels", {}).get("driftless.revision", ""))

        try:
            wait_until("the service to deploy the revision", lambda: applied() == sha, 240, 3)
        except AssertionError:
            logs = run("docker", "service", "logs", "--tail", "60", f"{agent}_reconciler",
                       check=False, timeout=30)  # fmt: skip
            raise AssertionError(f"not deployed; the agent's log:\n{logs}") from None

        def cache_running() -> bool:
            states = run("docker", "service", "ps", "--filter", "desired-state=running",
                         "--format", "{{.CurrentState}}", f"{app}_cache")  # fmt: skip
            return "Running" in states

        wait_until("the cache task running", cache_running, 60)

        # its state is in the Swarm: the lease names the task and the node it runs on, and the
        # status it keeps there has the revision it applied
        def state() -> dict[str, str]:
            found = json.loads(run("docker", "service", "inspect", f"{app}-agent-state"))
            return dict(found[0]["Spec"]["Labels"])

        def recorded() -> str:
            name = state().get("io.driftless.state.status")
            if not name:
                return ""
            data = run("docker", "config", "inspect", "--format", "{{printf \"%s\" .Spec.Data}}",
                       name)  # fmt: skip
            return str((json.loads(data).get("last_applied") or {}).get("sha", ""))

        wait_until("the status kept in the Swarm to record it", lambda: recorded() == sha, 60)
        lease = json.loads(state()["io.driftless.state.lease"])
        assert lease["holder"].startswith(f"{agent}_reconciler.1."), lease
        assert lease["node"] == socket.gethostname()
        task = run("docker", "ps", "-q", "--filter",
                   f"label=com.docker.swarm.service.name={agent}_reconciler")  # fmt: skip
        user = run("docker", "exec", task.split()[0], "sh", "-c",
                   "cat /proc/1/status | grep '^Uid:'")  # fmt: skip
        assert user.split()[1] == "10002", "the agent process does not run as root"
    finally:
        shutil.rmtree(work, ignore_errors=True)
