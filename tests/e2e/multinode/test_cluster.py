"""A real five-node Swarm (scripts/swarm-nodes.sh: 3 managers and 2 workers, each a Docker engine in
its own network namespace): placement across nodes, host-mode ports on every node's address, and
what a user sees when a worker dies. Managers dying (the quorum kept, then lost and back) are
tested with the agent on them: test_agent_service.py."""

from __future__ import annotations

import time
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


def test_edge_service_runs_only_on_edge_nodes(
    cluster: Cluster, web_image: str, network: str
) -> None:
    create_service(
        cluster, "edge", web_image, network, replicas=3, port=8081, maxreplicas=1,
        constraints=["node.labels.driftless.role==edge"],
    )  # fmt: skip
    wait_until("edge running on both edge nodes", lambda: len(cluster.running_on("edge")) == 2, 60)
    time.sleep(2)  # the third replica has nowhere to go: it stays pending, not placed elsewhere
    assert cluster.running_on("edge") == ["dln-w1", "dln-w2"]
    states = [t["Status"]["State"] for t in cluster.tasks("edge")]
    assert sorted(states) == ["pending", "running", "running"]
    for node in cluster.nodes.values():
        expected = node.name if node.name in ("dln-w1", "dln-w2") else None
        assert answer(node.address, 8081) == expected


def test_tasks_of_a_dead_worker_move_to_the_others(
    cluster: Cluster, web_image: str, network: str
) -> None:
    create_service(
        cluster, "spread", web_image, network, replicas=5, preferences=[("spread", "node.id")]
    )
    wait_until(
        "one task on every node", lambda: cluster.running_on("spread") == sorted(cluster.nodes), 90
    )
    started = time.monotonic()
    cluster.kill("dln-w2")
    assert not cluster.nodes["dln-w2"].alive()
    wait_until(
        "dln-w2 down",
        lambda: cluster.node_table()["dln-w2"]["state"] == "down",
        60,
    )
    wait_until(
        "5 tasks running again, on the 4 nodes left",
        lambda: len(cluster.running_on("spread")) == 5,
        60,
    )
    elapsed = time.monotonic() - started
    placed = cluster.running_on("spread")
    assert "dln-w2" not in placed
    assert set(placed) == {"dln-m1", "dln-m2", "dln-m3", "dln-w1"}
    print(f"worker killed -> its task running elsewhere: {elapsed:.1f} s")
