"""Images in a registry that requires a login, as in production (ghcr.io): the pre-flight check
and `docker stack deploy --with-registry-auth` use the agent's docker client configuration
(``DOCKER_CONFIG``), so Swarm can pull what only the agent may read.

A second local registry (Debian's docker-registry) with htpasswd auth on a free loopback port
plays the private registry; the Swarm node must pull from it (the pushed tags are removed from
the engine), which fails without the credentials the deploy forwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from reconciler_support.e2e import Env, free_port, sh

from reconciler.cli import EXIT_OK, EXIT_REFUSED

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

USER, PASSWORD = "driftless-agent", "registry-test-password"


def _bcrypt(password: str) -> str:
    # the registry's htpasswd file takes bcrypt only; the standard library's crypt (glibc's
    # libxcrypt) makes it, run apart so its deprecation warning stays out of this process
    code = "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))"
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, password],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def private_registry(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "private-registry"
    (root / "data").mkdir(parents=True)
    (root / "htpasswd").write_text(f"{USER}:{_bcrypt(PASSWORD)}\n")
    addr = f"127.0.0.1:{free_port()}"
    (root / "config.yml").write_text(
        json.dumps(
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
                "http": {"addr": addr},
                "auth": {"htpasswd": {"realm": "driftless-test", "path": str(root / "htpasswd")}},
            }
        )
    )
    with (root / "registry.log").open("w") as log:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{addr}/v2/", timeout=2)
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    break  # up, and asking for a login
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the private registry did not start: {root / 'registry.log'}")
            time.sleep(0.1)
        yield addr
    finally:
        proc.terminate()
        proc.wait(10)


def test_private_images_pass_preflight_and_swarm_pulls_them_with_the_agents_login(
    env: Env, private_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    repo = f"{private_registry}/{env.prefix}/reconciler-e2e-private"
    private = {tag: f"{repo}:{tag}" for tag in ("1", "2")}
    try:
        login = subprocess.run(
            ["docker", "--config", str(docker_config), "login", private_registry, "-u", USER,
             "--password-stdin"],
            input=PASSWORD, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert login.returncode == 0, login.stderr
        for tag, ref in private.items():
            sh("docker", "tag", env.images[tag], ref)
            sh("docker", "--config", str(docker_config), "push", "-q", ref)
            sh("docker", "rmi", ref)  # the node must pull it from the registry
        # the registry really is private
        anonymous = sh("docker", "pull", "-q", private["1"], check=False)
        assert anonymous.returncode != 0
        assert "no basic auth credentials" in anonymous.stderr or "unauthorized" in anonymous.stderr

        # an agent without the login is refused before anything live changes, and says why
        nobody = tmp_path / "no-login"
        nobody.mkdir()
        monkeypatch.setenv("DOCKER_CONFIG", str(nobody))
        env.commit("Move to the private registry", web=private["1"], api=private["1"])
        result = env.cli("sync")
        assert result.returncode == EXIT_REFUSED, result.stdout + result.stderr
        assert "PreflightFailed" in result.stdout
        assert "the registry refused access" in result.stdout
        assert "logged in to its registry" in result.stdout
        assert env.service("web") is None

        # the agent runs with its own docker client configuration holding the login
        monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
        result = env.cli("sync")
        assert result.returncode == EXIT_OK, result.stdout + result.stderr
        assert env.running_tags("web") == ["1"]
        assert env.running_tags("api") == ["1", "1"]
        env.commit("Bump to 2", web=private["2"], api=private["2"])
        assert env.cli("sync").returncode == EXIT_OK
        assert env.running_tags("api") == ["2", "2"]
        assert env.served_version() == "2"

        # with credentials, a tag nobody pushed is still told apart from one that exists
        env.commit("Bump to a tag never pushed", web=f"{repo}:9", api=private["2"])
        refused = env.cli("sync")
        assert refused.returncode == EXIT_REFUSED
        assert f"image {repo}:9 does not exist" in refused.stdout
        assert PASSWORD not in refused.stdout + refused.stderr
        assert PASSWORD not in (env.state_dir / "status.json").read_text()
    finally:
        for ref in private.values():
            sh("docker", "rmi", ref, check=False)
