"""A real five-node Swarm (scripts/swarm-nodes.sh: 3 managers and 2 workers, each a Docker engine in
its own network namespace): every node ready with its labels, and host-mode ports on every node's
address. Placement by labels and a worker dying are tested with the production stack on it
(test_production_stack.py); managers dying (the quorum kept, then lost and back) with the agent
on them (test_agent_service.py)."""

from __future__ import annotations

from typing import Any

import docker.errors
import docker.types
import httpx
import pytest
from multinode_support import Cluster, Node, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

SECOND = 1_000_000_000  # Swarm's durations are in nanoseconds


def create_service(
    cluster: Cluster,
    name: str,
    image: str,
    network: str,
    *,
    replicas: int,
    port: int | None = None,
    via: Node | None = None,
    **placement: Any,
) -> None:
    """A replicated service of the test web image; ``port``: published in host mode on each node."""
    ports = {port: (8080, "tcp", "host")} if port else {}
    (via or cluster.manager()).client.services.create(
        image,
        name=name,
        networks=[network],
        mode=docker.types.ServiceMode("replicated", replicas=replicas),
        endpoint_spec=docker.types.EndpointSpec(mode="dnsrr", ports=ports),
        env=["NODE={{.Node.Hostname}}"],
        stop_grace_period=SECOND,
        restart_policy=docker.types.RestartPolicy(condition="any", delay=SECOND),
        **placement,
    )


def answer(address: str, port: int) -> str | None:
    """What the web service answers on the node's address, or None if nothing does."""
    try:
        return httpx.get(f"http://{address}:{port}/", timeout=2).text.strip()
    except httpx.HTTPError:
        return None


def test_three_managers_and_two_workers_all_ready(cluster: Cluster) -> None:
    for via in cluster.managers:  # each manager answers for the whole Swarm
        table = cluster.node_table(via)
        assert sorted(table) == ["dln-m1", "dln-m2", "dln-m3", "dln-w1", "dln-w2"]
        assert {name: row["state"] for name, row in table.items()} == dict.fromkeys(table, "ready")
        managers = {name: row for name, row in table.items() if row["role"] == "manager"}
        assert sorted(managers) == ["dln-m1", "dln-m2", "dln-m3"]
        assert all(row["reachability"] == "reachable" for row in managers.values())
        assert sum(row["leader"] for row in managers.values()) == 1
        labels = {name: row["labels"] for name, row in table.items() if row["labels"]}
        assert labels == {
            "dln-m2": {"driftless.monitoring": "true"},
            "dln-m3": {"driftless.db": "true"},
            "dln-w1": {"driftless.role": "edge"},
            "dln-w2": {"driftless.role": "edge"},
        }
    for node in cluster.workers:
        assert node.client.info()["Swarm"]["ControlAvailable"] is False


def test_one_task_per_node_answers_on_every_node(
    cluster: Cluster, web_image: str, network: str
) -> None:
    create_service(cluster, "web", web_image, network, replicas=5, port=8080, maxreplicas=1)
    wait_until("5 tasks running", lambda: len(cluster.running_on("web")) == 5, 90)
    assert cluster.running_on("web") == sorted(cluster.nodes)
    for node in cluster.nodes.values():  # each node's own address answers, from its own task
        got = wait_until(f"{node.name} answers", lambda n=node: answer(n.address, 8080), 30)
        assert got == node.name
