"""Pre-flight's placement check, judged as Swarm judges constraints: a revision whose service no
node can run is refused naming the constraint; one some node can run (even a node that is down
or drained now) is not."""

from __future__ import annotations

from reconciler.placement import Node, meets, must_run, unplaceable

NODES = [
    Node("m1", "manager-1", "manager", {"driftless.db": "true"}),
    Node("m2", "manager-2", "manager", state="down"),
    Node("w1", "worker-1", "worker", {"driftless.role": "edge"}, availability="drain"),
    Node("w2", "worker-2", "worker", {"driftless.role": "edge"}, {"disk": "ssd"}, arch="aarch64"),
]


def test_constraints_are_read_as_swarm_reads_them() -> None:
    m1, _, _, w2 = NODES
    assert meets("node.role == manager", m1) is True
    assert meets("node.role==Manager", m1) is True  # values without regard to case
    assert meets("node.role != manager", m1) is False
    assert meets("node.labels.driftless.db == true", m1) is True
    assert meets("node.labels.driftless.db != true", w2) is True  # a label it lacks is ""
    assert meets("engine.labels.disk == ssd", w2) is True
    assert meets("node.platform.arch == aarch64", w2) is True
    assert meets("node.hostname == worker-2", w2) is True
    assert meets("node.cpu == 4", m1) is None  # a key Swarm does not know: not judged here
    assert meets("whatever", m1) is None


def test_a_constraint_no_node_meets_is_named() -> None:
    why = unplaceable("db", ("node.labels.driftless.db == yes",), NODES)
    assert why == "db: no node meets the placement constraint `node.labels.driftless.db == yes`"


def test_constraints_that_no_node_meets_together_are_named_with_all_of_them() -> None:
    placement = ("node.role == worker", "node.labels.driftless.db == true", "spread=node.id")
    why = unplaceable("api", placement, NODES)
    assert why is not None
    assert "up to `node.labels.driftless.db == true`" in why
    assert "(node.role == worker, node.labels.driftless.db == true)" in why


def test_a_node_down_or_drained_now_still_counts() -> None:
    assert unplaceable("nginx", ("node.labels.driftless.role == edge",), NODES[2:3]) is None
    assert unplaceable("x", ("node.hostname == manager-2",), NODES) is None


def test_nothing_is_refused_without_constraints_nodes_or_a_readable_constraint() -> None:
    assert unplaceable("web", None, NODES) is None
    assert unplaceable("web", ("spread=node.labels.zone", "max_replicas=1"), NODES) is None
    assert unplaceable("web", ("node.role == worker",), []) is None
    assert unplaceable("web", ("node.gpu == yes",), NODES) is None


def test_more_replicas_than_their_nodes_may_hold_one_per_node_are_named() -> None:
    edge = ("node.labels.driftless.role == edge", "max_replicas=1")
    assert unplaceable("nginx", edge, NODES, replicas=2) is None  # two edge nodes, one each
    why = unplaceable("nginx", edge, NODES[:3], replicas=2)
    assert why == (
        "nginx: 2 replicas, at most 1 per node, but 1 node meets its placement constraints "
        "(node.labels.driftless.role == edge)"
    )
    spread = ("max_replicas=2",)
    assert unplaceable("api", spread, NODES, replicas=8) is None
    why = unplaceable("api", spread, NODES, replicas=9)
    assert why == "api: 9 replicas, at most 2 per node, but 4 nodes in the Swarm"
    assert unplaceable("api", ("max_replicas=1",), NODES) is None  # replicas not known: not judged


def test_only_services_that_must_run_a_task_are_judged() -> None:
    assert must_run("replicated", 3)
    assert must_run("replicated-job", None)
    assert not must_run("replicated", 0)  # scaled to nothing: it needs no node
    assert not must_run("global", None)  # on no node it runs nothing, and converges
    assert not must_run("global-job", None)
