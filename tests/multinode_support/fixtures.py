"""Pytest fixtures of the multi-node Swarm: the cluster, and a small web image in the local
registry that every node can pull.

They are package-scoped: the Swarm is made for the tests of the package that uses them (one
``up`` takes seconds) and is gone before the rest of the suite runs, so its five idle engines do
not run beside the other tests."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from multinode_support.cluster import ENV_FILE, Cluster, run_script

BUSYBOX = Path("/bin/busybox")

#: The test service: busybox's httpd on $PORT (8080) answering the name of the node it runs on
#: ($NODE, set from the Swarm template {{.Node.Hostname}}). No RUN step: building it runs no
#: container, so the build needs no network (a node's engine reaches nothing off the node).
DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
COPY serve.sh /serve.sh
ENV PATH=/bin
EXPOSE 8080
ENTRYPOINT ["/bin/busybox", "sh", "/serve.sh"]
"""

SERVE = """busybox mkdir -p /www
echo "${NODE:-unknown}" >/www/index.html
busybox httpd -f -p "${PORT:-8080}" -h /www &
trap 'kill $!; exit 0' TERM INT
wait
"""


def _up_already() -> bool:
    if not ENV_FILE.exists():
        return False
    cluster = Cluster.from_env_file()
    try:
        return all(node.alive() for node in cluster.nodes.values())
    finally:
        cluster.close()


@pytest.fixture(scope="package")
def swarm_cluster() -> Iterator[Cluster]:
    """The multi-node Swarm (3 managers, 2 workers), made by ``scripts/swarm-nodes.sh up`` for the
    package's tests and removed after them; one that is up already is used as it is and left up."""
    if os.geteuid() != 0:
        pytest.fail("the multi-node Swarm needs root (network namespaces, dockerd)", pytrace=False)
    made = not _up_already()
    if made:
        run_script("up", timeout=600)
    cluster = Cluster.from_env_file()
    cluster.disposable = made
    try:
        yield cluster
    finally:
        cluster.close()
        if made:
            run_script("down", timeout=300)


def build_context() -> bytes:
    if not BUSYBOX.exists():
        pytest.fail(
            "busybox is not installed (scripts/deps.sh installs busybox-static)", pytrace=False
        )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, mode in (
            ("Dockerfile", DOCKERFILE.encode(), 0o644),
            ("serve.sh", SERVE.encode(), 0o755),
            ("busybox", BUSYBOX.read_bytes(), 0o755),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="package")
def web_image(swarm_cluster: Cluster) -> str:
    """The test web image, built on the first manager and pushed to the local registry."""
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    ref = f"{swarm_cluster.registry}/{prefix}/multinode-web:1"
    client = swarm_cluster.managers[0].client
    client.images.build(
        fileobj=io.BytesIO(build_context()),
        custom_context=True,
        tag=ref,
        rm=True,
        network_mode="none",
    )
    repo, _, tag = ref.rpartition(":")
    for line in client.images.push(repo, tag=tag, stream=True, decode=True):
        if "error" in line:
            pytest.fail(f"push of {ref} failed: {line['error']}", pytrace=False)
    return ref
