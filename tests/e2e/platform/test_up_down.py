"""The README's first command: `scripts/up.sh` brings the platform up on this machine's Swarm,
staging and production side by side with staging's release proposed to production by digest, a
second run changes nothing, and `scripts/down.sh` removes what it made.

Run under the TEST_STACK_PREFIX (DRIFTLESS_STACK), on free published ports, with its state in a
temporary folder (DRIFTLESS_UP_STATE) and the test environment's base image. The engine, Swarm and
registry are the shared ones, so up.sh finds them running and down.sh must leave them alone.
down.sh runs with --keep-images: without it, it deletes the stand-in images (`driftless/*:local`)
from the shared registry, which other tests running at the same time use. Its reconciler listens
where up.sh always puts it (the docker_gwbridge gateway, port 9480, which nginx and Prometheus
expect; staging's on 9481), so it cannot run while a developer's own `scripts/up.sh` platform is
up on this machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from stack_harness import ROOT, SECRETS_SCRIPT, free_port, run, wait_until

from scripts.remove_stack import remove_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

UP = ROOT / "scripts" / "up.sh"
DOWN = ROOT / "scripts" / "down.sh"
UNAVAILABLE = ("grafana", "loki", "alloy", "cadvisor")


@dataclass
class Up:
    stack: str
    state: Path
    env: dict[str, str]
    https_port: int
    http_port: int
    staging_https_port: int

    def run(
        self, script: Path, *args: str, timeout: float = 1500
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def client(self, staging: bool = False) -> httpx.Client:
        port, state = (
            (self.staging_https_port, self.state / "staging")
            if staging
            else (self.https_port, self.state)
        )
        return httpx.Client(
            base_url=f"https://127.0.0.1:{port}",
            verify=ssl.create_default_context(cafile=state / "secrets" / "tls_fallback_cert"),
            timeout=10,
        )

    def owned(self) -> dict[str, list[str]]:
        """What of both stacks is left in the engine: services, networks, volumes, secrets."""
        left: dict[str, list[str]] = {"services": [], "networks": [], "volumes": [], "secrets": []}
        for stack in (self.stack, f"{self.stack}-staging"):
            label = f"label=com.docker.stack.namespace={stack}"
            left["services"] += run("docker", "service", "ls", "-q", "--filter", label).split()
            left["networks"] += run("docker", "network", "ls", "-q", "--filter", label).split()
            left["volumes"] += run("docker", "volume", "ls", "-q", "--filter", label).split()
            left["secrets"] += [
                s
                for s in run("docker", "secret", "ls", "--format", "{{.Name}}").split()
                if s.startswith(f"{stack}_")
            ]
        return left


@pytest.fixture
def up(registry: str, base_image: str, artifacts_dir: Path) -> Iterator[Up]:
    stack = os.environ.get("TEST_STACK_PREFIX", "dlt") + "up"
    state = Path(tempfile.mkdtemp(prefix=f"{stack}-")) / "up"
    http_port, https_port = free_port(), free_port()
    staging_http_port, staging_https_port = free_port(), free_port()
    env = {
        **os.environ,
        "DRIFTLESS_STACK": stack,
        "DRIFTLESS_UP_STATE": str(state),
        "DRIFTLESS_HTTP_PORT": str(http_port),
        "DRIFTLESS_HTTPS_PORT": str(https_port),
        "DRIFTLESS_STAGING_HTTP_PORT": str(staging_http_port),
        "DRIFTLESS_STAGING_HTTPS_PORT": str(staging_https_port),
        "DRIFTLESS_UPSTREAM_IMAGES": "no",
        "PYTHON_IMAGE": base_image,
        "REGISTRY": registry,
    }
    it = Up(stack, state, env, https_port, http_port, staging_https_port)
    try:
        yield it
    finally:
        logs = artifacts_dir / "platform-up"
        logs.mkdir(parents=True, exist_ok=True)
        for name, folder in (("reconciler", state), ("reconciler-staging", state / "staging")):
            if (folder / "reconciler.log").exists():
                shutil.copy(folder / "reconciler.log", logs / f"{name}.log")
        if state.exists():  # the test failed before down.sh finished: clean up after it
            it.run(DOWN, "--keep-images", timeout=300)
        for folder in (state, state / "staging"):
            pid = folder / "reconciler.pid"
            if pid.exists():
                subprocess.run(["kill", pid.read_text().strip()], check=False)
        remove_stack(stack, volumes=True)
        remove_stack(f"{stack}-staging", volumes=True)
        run(SECRETS_SCRIPT, "remove", stack, check=False)
        shutil.rmtree(state.parent, ignore_errors=True)


def service_versions(stack: str) -> dict[str, int]:
    ids = run(
        "docker", "service", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={stack}"
    )
    inspected = json.loads(run("docker", "service", "inspect", *ids.split()))
    return {s["Spec"]["Name"]: s["Version"]["Index"] for s in inspected}


def staging_is_served_and_promoted(up: Up, tag: str) -> None:
    """Staging runs the same release on its own ports, smaller, and proposed it to production."""
    with up.client(staging=True) as http:
        staged = http.get("/version").json()
    assert staged["image_tag"] == tag, "staging serves the same release, on its own ports"
    staging_api = json.loads(run("docker", "service", "inspect", f"{up.stack}-staging_api"))[0]
    assert staging_api["Spec"]["Mode"]["Replicated"]["Replicas"] == 2, "fewer API replicas"
    assert "ENVIRONMENT=staging" in staging_api["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]

    # staging verified the release and proposed it to production: a branch that pins
    # production's images to the digests staging runs (no forge here: merged by hand)
    promotion = wait_until(
        "staging's promotion branch",
        lambda: json.loads((up.state / "staging" / "reconciler" / "status.json").read_text()).get(
            "promotion"
        ),
        120,
        3,
    )
    branch = promotion["branch"]
    proposed = run("git", "-C", str(up.state / "remote.git"), "show",
                   f"{branch}:desired-state/production/images.yaml")  # fmt: skip
    staging_status = json.loads((up.state / "staging" / "reconciler" / "status.json").read_text())
    api = next(s for s in staging_status["inventory"] if s["name"] == "api")
    running_api = f"{api['live_image']}@{api['live_digest']}"
    assert api["live_digest"].startswith("sha256:"), api
    assert f"api: {running_api}\n" in proposed, proposed
    message = run("git", "-C", str(up.state / "remote.git"), "log", "-1", "--format=%B", branch)
    assert "Verification in staging" in message, message


def test_up_deploys_a_second_run_changes_nothing_and_down_removes_it(up: Up) -> None:
    tag = run(ROOT / "scripts" / "build-images.sh", "tag").strip()  # what up.sh will build
    first = up.run(UP)
    assert first.returncode == 0, f"up.sh failed:\n{first.stdout}\n{first.stderr[-4000:]}"
    out = first.stdout
    # it says where everything is, and what does not run here and why
    for where in ("API ", "Reconciler status", "Prometheus", "Alertmanager", "Grafana"):
        assert where in out, f"up.sh does not say where the {where.strip()} is:\n{out}"
    assert "Scaled to 0 because no image exists here: " + " ".join(UNAVAILABLE) in out, out
    assert f"https://localhost:{up.https_port}/" in out
    # it installs what the platform needs, not the test tools (deps.sh platform)
    assert "distribution packages: all present" in first.stderr
    assert "node packages" not in first.stderr
    assert "Debian 13" not in first.stderr

    for name in UNAVAILABLE:
        tasks = run("docker", "service", "ps", "-q", "--filter", "desired-state=running",
                    f"{up.stack}_{name}")  # fmt: skip
        assert not tasks.split(), f"{name} has no image here and must not run"
    with up.client() as http:
        version = http.get("/version").json()
    assert version["image_tag"] == tag, "the API serves the image up.sh built from this checkout"
    staging_is_served_and_promoted(up, tag)

    # the monitoring UIs and the host's reconciler, through nginx, as the summary promises
    password = (up.state / "secrets" / "monitoring_password").read_text()
    with up.client() as http:
        assert http.get("/prometheus/-/ready").status_code == 401, "Prometheus needs the login"
        login = httpx.BasicAuth("admin", password)
        deploy = http.get("/deploy/api/status", auth=login)
        assert deploy.status_code == 200, deploy.text
        head = run("git", "-C", str(up.state / "remote.git"), "rev-parse", "main").strip()
        assert deploy.json()["last_applied"]["sha"] == head

        def targets_up() -> dict[str, float]:
            query = 'sum by (job) (up{job=~"api|reconciler"})'
            r = http.get("/prometheus/api/v1/query", params={"query": query}, auth=login)
            found = {s["metric"]["job"]: float(s["value"][1]) for s in r.json()["data"]["result"]}
            return found if found == {"api": 3.0, "reconciler": 1.0} else {}

        # each API replica on its own, and the reconciler on the host through the gateway
        wait_until("Prometheus to scrape 3 API replicas and the reconciler", targets_up, 120, 3)

    # a second run: same reconciler process, no new commit, no service updated
    pid = (up.state / "reconciler.pid").read_text()
    versions = service_versions(up.stack) | service_versions(f"{up.stack}-staging")
    second = up.run(UP, timeout=600)
    assert second.returncode == 0, f"second up.sh failed:\n{second.stdout}\n{second.stderr[-4000:]}"
    assert "the local remote already holds this desired state" in second.stderr
    for env in ("staging", "production"):
        assert f"the {env} reconciler is already running with this configuration" in second.stderr
    assert (up.state / "reconciler.pid").read_text() == pid
    assert run("git", "-C", str(up.state / "remote.git"), "rev-parse", "main").strip() == head
    after = service_versions(up.stack) | service_versions(f"{up.stack}-staging")
    assert after == versions, "a second run must not update any service"

    # down: the stack, its networks, volumes and secrets, the reconciler and the state are gone;
    # the shared engine, Swarm and registry (which up.sh did not start) are left running
    down = up.run(DOWN, "--keep-images", timeout=600)
    assert down.returncode == 0, f"down.sh failed:\n{down.stdout}\n{down.stderr[-4000:]}"
    assert up.owned() == {"services": [], "networks": [], "volumes": [], "secrets": []}
    assert not up.state.exists()
    assert subprocess.run(["kill", "-0", pid], check=False, capture_output=True).returncode != 0
    assert run("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "active"
    assert httpx.get(f"http://{up.env['REGISTRY']}/v2/", timeout=5).status_code == 200
    assert not re.search(r"leaving the Swarm|stopping the dockerd", down.stderr)
