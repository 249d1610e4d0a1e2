"""Fixtures of the multi-node tests: the Swarm of scripts/swarm-nodes.sh (made once for them),
every node running and Ready before each test, and no service of a test left after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from multinode_support import Cluster, wait_until
from multinode_support import swarm_cluster as swarm_cluster
from multinode_support import web_image as web_image


@pytest.fixture(scope="package")
def network(swarm_cluster: Cluster) -> str:
    """An overlay network for the tests' services (a node's default bridge stays on the node)."""
    name = "multinode"
    client = swarm_cluster.manager().client
    if not client.networks.list(names=[name]):
        client.networks.create(name, driver="overlay", scope="swarm")
    return name


@pytest.fixture
def cluster(swarm_cluster: Cluster) -> Iterator[Cluster]:
    """The Swarm with every node up; what the test killed or cut off is brought back after it,
    and its services are removed (their containers stopped: their host ports are free)."""
    swarm_cluster.restore()
    yield swarm_cluster
    swarm_cluster.restore()
    client = swarm_cluster.manager().client
    for service in client.services.list():
        service.remove()
    wait_until(
        "every container of the test stopped on every node",
        lambda: not any(n.client.containers.list() for n in swarm_cluster.nodes.values()),
        60,
    )
