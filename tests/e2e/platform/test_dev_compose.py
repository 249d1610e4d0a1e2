"""The development compose file brings the API up on PostgreSQL and Redis, healthy, in order.

Run with Debian's docker-compose (1.29: the compose plugin is not packaged here) and the local
stand-in images for PostgreSQL and Redis; the API image is built from Dockerfile.api by compose.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import httpx
import pytest
from stack_harness import ROOT, free_port, run, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def compose(registry: str, base_image: str) -> tuple[list[str], dict[str, str]]:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is missing: scripts/deps.sh installs Debian's package"
    project = os.environ.get("TEST_STACK_PREFIX", "dlt") + "dev"
    run(ROOT / "scripts" / "build-images.sh", "stand-ins", env={**os.environ, "REGISTRY": registry})
    env = {
        **os.environ,
        "PYTHON_IMAGE": base_image,
        "POSTGRES_IMAGE": f"{registry}/driftless/postgres:local",
        "REDIS_IMAGE": f"{registry}/driftless/redis:local",
        "API_IMAGE": f"{project}/api:dev",
        "DEV_API_PORT": str(free_port()),
        "DEV_POSTGRES_PORT": str(free_port()),
        "DOCKER_BUILDKIT": "0",
        "COMPOSE_DOCKER_CLI_BUILD": "0",
    }
    return [exe, "-p", project, "-f", str(ROOT / "docker-compose.yml")], env


def test_the_dev_compose_file_is_valid(compose: tuple[list[str], dict[str, str]]) -> None:
    cmd, env = compose
    config = run(*cmd, "config", env=env)
    assert "service_completed_successfully" in config
    assert "service_healthy" in config


def test_dev_compose_serves_a_ready_api(compose: tuple[list[str], dict[str, str]]) -> None:
    cmd, env = compose
    try:
        run(*cmd, "up", "-d", "--build", env=env, timeout=900)
        url = f"http://127.0.0.1:{env['DEV_API_PORT']}"

        def ready() -> bool:
            return httpx.get(f"{url}/health/ready", timeout=3).status_code == 200

        wait_until("the dev API to be ready", ready, 180, every=2)
        # migrate ran to completion before the API started (depends_on conditions)
        ps = run(*cmd, "ps", "-q", "migrate", env=env).split()
        state = json.loads(run("docker", "inspect", ps[0]))[0]["State"]
        assert state["Status"] == "exited"
        assert state["ExitCode"] == 0
        r = httpx.post(
            f"{url}/auth/register",
            json={"email": "dev@example.org", "password": "development only", "name": "Dev"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
    finally:
        subprocess.run(
            [*cmd, "down", "-v", "--remove-orphans"],
            env=env,
            capture_output=True,
            timeout=300,
            check=False,
        )
        run("docker", "rmi", env["API_IMAGE"], check=False)
