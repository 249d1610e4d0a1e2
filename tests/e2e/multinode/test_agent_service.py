"""The agent as a one-replica Swarm service on the managers of a five-node Swarm
(``multinode_support.agent``), its state in the Swarm under a lease: what a team sees when it
moves the agent from systemd to the service, runs two tasks at once, drains a worker during a
rollout, loses the node the agent runs on in the middle of a bad release, or loses the managers'
quorum.

The tests run in order on one deployment of the agent (a module fixture: it takes a minute to
start, moved there from the agent systemd runs on the first manager); each begins with every node
up and the agent acting."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from multinode_support import Cluster, wait_until
from multinode_support.agent import AgentService, app_stack, build_agent_images, since
from multinode_support.host_agent import HostAgent

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]


@dataclass
class Moved:
    """The agent moved from systemd to the Swarm service as ``runbooks/SCALING.md`` says: what
    each step left."""

    service: AgentService
    host: HostAgent
    first: str  #: the revision the systemd agent deployed
    recorded: dict[str, Any]  #: ``reconciler status --json`` once the systemd agent was paused
    exit_code: int | None  #: the systemd agent's, on SIGTERM
    version: int  #: web's service version when the systemd agent stopped
    status: dict[str, Any]  #: the service agent's page after its first pass


@pytest.fixture(scope="module")
def moved(swarm_cluster: Cluster, registry: str, base_image: str) -> Iterator[Moved]:
    """The agent starts as systemd runs it on the first manager and deploys web 1; then it is
    paused, stopped between passes, and the service is deployed with two replicas."""
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    built = build_agent_images(registry, base_image, prefix)
    images = {k: v.replace(registry, swarm_cluster.registry, 1) for k, v in built.items()}
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-agent-"))
    # a shorter lease and health check than production's (15 s, 20 s) keep the tests short;
    # bench/multinode/bench_multinode.py measures failover with production's
    service = AgentService(swarm_cluster, work, images, prefix, lease="6s", health_timeout="10s")
    service.remove()  # what an earlier run on this Swarm left
    host = HostAgent(service, swarm_cluster.managers[0])
    try:
        first = service.commit("Web 1", "1")
        host.start()
        wait_until("the systemd agent to deploy web 1", lambda: host.applied(first), 240, 1)
        paused = host.cli("pause", "--reason", "moving to the Swarm service")
        assert paused.returncode == 0, paused.stdout + paused.stderr
        recorded = wait_until(
            "the systemd agent paused and between passes (`reconciler status`)",
            lambda: (r := host.recorded()) and r["paused"] and not r["phase"] and r,
            60,
        )
        exit_code = host.stop()
        web = service.web()
        assert web is not None
        service.deploy(replicas=2)
        status = wait_until(
            "the service's agent to hold the lease and end a pass",
            lambda: (s := service.holder_status()) and s["last_pass_at"] and s,
            180,
            1,
        )
        yield Moved(service, host, first, recorded, exit_code, web["Version"]["Index"], status)
    except BaseException:
        print(f"--- the systemd agent\n{host.tail()}\n--- the service\n{service.logs()}")
        raise
    finally:
        host.stop()
        swarm_cluster.restore()
        service.remove()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def agent(moved: Moved) -> AgentService:
    return moved.service


@pytest.fixture
def acting(agent: AgentService) -> Iterator[AgentService]:
    """Every node up, two agent tasks on two managers, one holding the lease, its page
    answering; what the agents did printed after the test (pytest shows it when it failed)."""
    agent.cluster.restore()
    wait_until("two agent tasks running", lambda: len(set(agent.running_on())) == 2, 120)
    wait_until("an agent to hold the lease", lambda: agent.holder_status(), 120)
    yield agent
    for node in agent.running_on():  # shown when the test failed
        print(f"--- what the agent on {node} did\n{agent.story(node)}")


def test_moved_from_systemd_to_the_service_without_redeploying(moved: Moved) -> None:
    """SCALING.md's move: the systemd agent paused, stopped between passes, the service
    deployed; the service's agent takes over what runs and deploys nothing again."""
    assert moved.recorded["paused"] is True
    assert moved.recorded["paused_reason"] == "moving to the Swarm service"
    assert moved.recorded["journal"] is None
    assert moved.exit_code == 0  # SIGTERM between passes: a clean stop
    assert moved.host.page() is None  # nothing answers where it did
    service = moved.service
    web = service.web()
    assert web is not None
    assert web["Version"]["Index"] == moved.version  # not updated by the new agent
    assert service.web_revision() == moved.first
    assert service.web_running_tags() == ["1", "1"]
    lease = moved.status["lease"]
    assert lease["holding"] is True
    assert lease["node"] in {n.name for n in service.cluster.managers}
    assert moved.status["paused"] is False  # the pause was the systemd agent's own
    assert moved.status["last_result"] == "noop", moved.status["last_message"]
    assert service.reverts() == []


def _standby(agent: AgentService) -> str:
    """The node of the agent task that does not hold the lease."""
    lease = agent.leaseholder()
    assert lease is not None
    return next(n for n in agent.running_on() if n != lease["node"])


def test_the_page_names_the_node_the_agent_runs_on_and_every_node(acting: AgentService) -> None:
    lease = acting.leaseholder()
    assert lease is not None
    assert lease["node"] in acting.running_on()
    assert lease["node"] in {n.name for n in acting.cluster.managers}
    status = acting.page(lease["node"])
    assert status["lease"]["node"] == lease["node"]
    assert status["lease"]["holder"].startswith(f"{acting.name}_reconciler.")
    nodes = {n["hostname"]: n for n in status["nodes"]}
    assert sorted(nodes) == sorted(acting.cluster.nodes)
    assert {n["state"] for n in nodes.values()} == {"ready"}
    assert {name for name, n in nodes.items() if n["role"] == "manager"} == {
        n.name for n in acting.cluster.managers
    }
    page = acting.page(lease["node"], "")
    assert lease["node"] in page
    assert "dln-w2" in page


def test_two_agent_tasks_at_once_only_one_applies(acting: AgentService) -> None:
    holder = acting.leaseholder()
    assert holder is not None
    other = _standby(acting)
    standby = wait_until(
        "the second task's page to say it waits",
        lambda: (s := acting.status_on(other)) and s["lease"] and s["lease"]["why"] and s,
        120,
    )
    assert standby["lease"]["holding"] is False
    assert f"held by {holder['holder']}" in standby["lease"]["why"]
    assert "Standby" in acting.page(other, "")

    sha = acting.commit("Web 2", "2")
    wait_until("web 2 applied", lambda: acting.applied(sha), 180, 1)
    assert acting.web_running_tags() == ["2", "2"]
    after = acting.leaseholder()
    assert after is not None
    assert after["holder"] == holder["holder"]
    assert after["term"] == holder["term"]  # nobody took it over
    assert (acting.status_on(other) or {})["lease"]["holding"] is False
    assert '"phase": "apply"' not in acting.logs_of(other)  # the waiting task applied nothing


def test_a_worker_drained_during_a_rollout_still_verifies(acting: AgentService) -> None:
    """Swarm pauses an update when it stops a new task itself, on the drained node: the agent
    resumes it (not the revision's fault) and the rollout verifies."""
    tag = "1" if acting.web_tag() != "1" else "2"
    # the drain falls in a new task's monitor window
    stack = app_stack(4, acting.health_timeout, monitor="8s", parallelism=2)
    sha = acting.commit(f"Web {tag} on four replicas", tag, stack=stack)

    def rolling_onto_w1() -> bool:
        service = acting.web()
        updating = ((service or {}).get("UpdateStatus") or {}).get("State") == "updating"
        return updating and any(
            t["Node"] == "dln-w1"
            and t["Status"]["State"] == "running"
            and t["Spec"]["ContainerSpec"]["Image"].split("@")[0].endswith(f":{tag}")
            for t in acting.cluster.tasks(f"{acting.app}_web")
        )

    wait_until("the rollout to reach dln-w1", rolling_onto_w1, 120, 0.2)
    acting.cluster.drain("dln-w1")
    try:
        wait_until(f"web {tag} applied", lambda: acting.applied(sha), 240, 1)
        assert acting.reverts() == []
        assert acting.web_running_tags() == [tag] * 4
        assert acting.cluster.running_on(f"{acting.app}_web") == ["dln-w2"] * 4
        resumed = "Swarm paused the update" in acting.story(acting.leaseholder()["node"])  # type: ignore[index]
        print(f"drained during the rollout; Swarm paused it and the agent resumed it: {resumed}")
        history = acting.holder_status()["history"]  # type: ignore[index]
        results = [h["result"] for h in history if (h["revision"] or {}).get("sha") == sha]
        assert "success" in results, history
        assert not {"rolled_back", "failed"} & set(results), history
    finally:
        acting.cluster.activate("dln-w1")


def test_the_agents_node_killed_while_it_verifies_a_bad_release(acting: AgentService) -> None:
    good = acting.web_tag()
    bad = acting.commit("Web 3", "3")
    wait_until("the agent to verify web 3", lambda: acting.journal_phase() == "verify", 120, 0.2)
    node, standby = acting.leaseholder()["node"], _standby(acting)  # type: ignore[index]
    acting.cluster.kill(node)
    killed, wall = time.monotonic(), time.time()
    wait_until("the revert pushed", lambda: len(acting.reverts()) == 1, 180, 1)
    reverted = since(killed)
    every = [good] * acting.web_replicas()
    wait_until(f"web back on {good}", lambda: acting.web_running_tags() == every, 120)
    back = since(killed)
    assert acting.last_message().splitlines()[-1] == f"Driftless-Revert-Of: {bad}"
    lease = acting.leaseholder()
    assert lease is not None
    assert lease["node"] == standby  # the standby took over, Swarm had nothing to reschedule
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in acting.timeline(wall).items())
    print(
        f"agent's node {node} killed while verifying -> revert pushed {reverted:.1f} s, "
        f"web back on {good} {back:.1f} s ({steps})"
    )
    print(acting.story(standby))
    acting.cluster.restore()  # the dead node comes back: nothing is reverted twice
    time.sleep(5)
    assert len(acting.reverts()) == 1
    # Swarm started a second task in place of the lost one: it waits for the one that took over
    wait_until("two agent tasks again", lambda: len(set(acting.running_on())) == 2, 120)
    newcomer = _standby(acting)
    wait_until(
        "the new task to wait for the acting one",
        lambda: (
            f"held by {lease['holder']}"
            in ((acting.status_on(newcomer) or {}).get("lease") or {}).get("why", "")
        ),
        60,
    )


def test_managers_quorum_lost_the_agent_changes_nothing_then_recovers(
    acting: AgentService,
) -> None:
    node = acting.leaseholder()["node"]  # type: ignore[index]
    others = [m.name for m in acting.cluster.managers if m.name != node]
    before, reverts = acting.web_tag(), acting.reverts()
    for name in others:
        acting.cluster.kill(name)
    lost = time.monotonic()
    sha = acting.commit("Web 2 while the managers have no quorum", "2")

    def says_unavailable() -> dict[str, Any] | None:
        status = acting.status_on(node)
        lease = status and status["lease"]
        return status if lease and not lease["holding"] and lease["why"] else None

    status = wait_until("the agent's page to say it cannot act", says_unavailable, 120)
    print(f"quorum lost -> the agent stopped acting after {since(lost):.1f} s: {status['lease']}")
    assert "Docker engine" in status["lease"]["why"], status["lease"]
    time.sleep(5)
    assert '"phase": "apply"' not in acting.logs_of(node, tail=200).split("cannot be")[-1]
    for name in others:
        acting.cluster.start(name)
    back = time.monotonic()
    try:
        wait_until("web 2 applied once quorum is back", lambda: acting.applied(sha), 240, 1)
    except AssertionError:
        # what Swarm says of web's tasks, when the agent blamed the revision for them
        api = acting.cluster.manager().client.api
        for task in api.tasks(filters={"service": f"{acting.app}_web"}):
            status = task["Status"]
            where = (task["ID"][:12], task.get("NodeID", "")[:8], task["DesiredState"])
            print(*where, status["State"], status.get("Timestamp"), status.get("Err") or "")
        print(acting.web())
        raise
    print(f"quorum back -> web 2 applied {since(back):.1f} s")
    assert before != "2"
    every = ["2"] * acting.web_replicas()
    wait_until("every web task on 2", lambda: acting.web_running_tags() == every, 60)
    assert acting.reverts() == reverts  # the engine's trouble is not the revision's fault
