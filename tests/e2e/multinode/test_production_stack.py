"""The production stack on the five-node Swarm, deployed by the agent service as
``runbooks/SCALING.md`` runs it on several managers: the stateful services on the nodes labelled
for them, the API spread over the nodes, nginx on both edge nodes with host-mode ports, Prometheus
scraping every node, and what users see when an edge node dies.

What is deployed is ``desired-state/production`` on ``desired-state/base`` as committed. What
differs on this machine is what the platform e2e tests change too (``tests/e2e/platform/
stack_harness.py``): local images (stand-ins built from Debian packages; Grafana, Loki, Alloy and
cAdvisor have none, so they are scaled to 0 or kept off every node) and the secrets, encrypted for
this run's own age key. The render variables publish nginx on 80/443 of each edge node's address
and ask for one nginx per edge node (``DRIFTLESS_EDGE_REPLICAS=2``).

The tests run in order on one deployment (a module fixture: the first deploy pulls every image on
five nodes)."""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from multinode_support import Cluster, wait_until
from multinode_support.agent import AGENT_UID, AgentService

from tests.e2e.platform.stack_harness import (
    AGE_KEY,
    SEALED,
    STACK_SOURCES,
    UNAVAILABLE,
    build_images,
    prepare_stack,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = "desired-state/production"
EDGES = ("dln-w1", "dln-w2")


@dataclass
class Production:
    agent: AgentService
    cluster: Cluster
    stack: str
    cacert: Path
    password: str  #: the monitoring login's (user admin)

    def running_on(self, service: str) -> list[str]:
        return self.cluster.running_on(f"{self.stack}_{service}")

    def client(self, node: str) -> httpx.Client:
        """HTTPS through the nginx on ``node``'s address (the fallback certificate, issued for
        the public host name, not for the node's address)."""
        tls = ssl.create_default_context(cafile=str(self.cacert))
        tls.check_hostname = False
        address = self.cluster.nodes[node].address
        return httpx.Client(base_url=f"https://{address}", verify=tls, timeout=5)


def _sources(images: dict[str, str], sealed: Path) -> dict[str, str]:
    """The stack's files as committed, with this machine's images and secrets."""
    files = {}
    for rel in STACK_SOURCES:
        for path in sorted((ROOT / rel).rglob("*")):
            if path.is_file():
                files[str(path.relative_to(ROOT))] = path.read_text()
    files[f"{PRODUCTION}/images.yaml"] = "".join(f"{k}: {v}\n" for k, v in images.items())
    files[f"{PRODUCTION}/{SEALED}"] = sealed.read_text()
    return files


@pytest.fixture(scope="module")
def production(swarm_cluster: Cluster, registry: str) -> Iterator[Production]:
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    built = build_images(registry)
    on_nodes = built.local(built.api_v1) | {"agent": built.reconciler}
    images = {k: v.replace(registry, swarm_cluster.registry, 1) for k, v in on_nodes.items()}
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-production-"))
    agent = AgentService(swarm_cluster, work / "agent", images, f"{prefix}p", path=PRODUCTION)
    seal = work / "seal"
    stack, variables = prepare_stack(agent.app, seal)
    variables |= {
        "DRIFTLESS_HTTP_PORT": "80",
        "DRIFTLESS_HTTPS_PORT": "443",
        "DRIFTLESS_EDGE_REPLICAS": "2",
    }
    key = seal / AGE_KEY
    shutil.chown(key, AGENT_UID)
    key.chmod(0o400)
    agent.environment = {f"RECONCILER_RENDER__VARIABLES__{k}": v for k, v in variables.items()}
    agent.environment |= {
        "RECONCILER_ENVIRONMENT": "production",
        "RECONCILER_RENDER__SOPS_AGE_KEY_FILE": "/etc/reconciler/age.key",
        "RECONCILER_ANALYSIS__PROMETHEUS_URL": "http://prometheus:9090",
        "RECONCILER_ANALYSIS__NETWORK": "analysis",
        "RECONCILER_TIMEOUTS__APPLY": "600s",
        "RECONCILER_TIMEOUTS__VERIFY": "300s",
        "RECONCILER_SYNC__INTERVAL": "5s",
    }
    agent.mounts = [
        {"type": "bind", "source": str(key), "target": "/etc/reconciler/age.key", "read_only": True}
    ]
    swarm_cluster.restore()
    agent.remove()  # what an earlier run on this Swarm left
    try:
        deployed = {k: v for k, v in images.items() if k != "agent"}
        first = agent.write(_sources(deployed, seal / SEALED), "Deploy the platform")
        started = time.monotonic()
        agent.deploy(replicas=2)
        wait_until("the agent to apply the first revision", lambda: agent.applied(first), 600, 3)
        print(f"first deploy on five nodes: {time.monotonic() - started:.0f} s")
        password = (seal / "secrets" / "monitoring_password").read_text()
        yield Production(agent, swarm_cluster, stack.name, stack.cacert, password)
    except BaseException:
        print(agent.logs())
        raise
    finally:
        if not swarm_cluster.disposable:  # (a disposable Swarm goes with all of it)
            swarm_cluster.restore()
            agent.remove()
        shutil.rmtree(work, ignore_errors=True)


def test_each_service_runs_where_its_labels_say(production: Production) -> None:
    def placed() -> dict[str, list[str]] | None:
        where = {
            name: production.running_on(name)
            for name in ("postgres", "redis", "prometheus", "alertmanager", "nginx", "api")
        }
        where["node-exporter"] = production.running_on("node-exporter")
        return where if len(where["api"]) == 3 and len(where["node-exporter"]) == 5 else None

    where = wait_until("3 API replicas and node-exporter on every node", placed, 180, 2)
    assert where["postgres"] == where["redis"] == ["dln-m3"]  # driftless.db
    assert where["prometheus"] == where["alertmanager"] == ["dln-m2"]  # driftless.monitoring
    assert where["nginx"] == list(EDGES)  # driftless.role=edge, one per edge node
    assert len(set(where["api"])) == 3, f"two API replicas on one node: {where['api']}"
    assert where["node-exporter"] == sorted(production.cluster.nodes)  # global
    for name in UNAVAILABLE:  # no image here: scaled to 0 or kept off every node
        assert production.running_on(name) == []


def test_users_are_served_through_each_edge_node_and_only_there(production: Production) -> None:
    for node in EDGES:
        with production.client(node) as http:
            version = wait_until(f"the API through {node}", lambda h=http: h.get("/version"), 60)
            assert version.status_code == 200
            products = http.get("/products?limit=5")  # PostgreSQL and Redis, on dln-m3
            assert products.status_code == 200, products.text
    for node in ("dln-m1", "dln-m2", "dln-m3"):
        with production.client(node) as http, pytest.raises(httpx.ConnectError):
            http.get("/version")


def test_prometheus_scrapes_every_node(production: Production) -> None:
    login = httpx.BasicAuth("admin", production.password)

    def targets() -> dict[str, float] | None:
        query = 'sum by (job) (up{job=~"api|node-exporter|nginx-exporter"})'
        with production.client(EDGES[0]) as http:
            r = http.get("/prometheus/api/v1/query", params={"query": query}, auth=login)
        found = {s["metric"]["job"]: float(s["value"][1]) for s in r.json()["data"]["result"]}
        return found if found == {"api": 3.0, "node-exporter": 5.0, "nginx-exporter": 1.0} else None

    # every task found through tasks.<service> on the overlay, whichever node it runs on
    wait_until("Prometheus to scrape 3 API replicas and 5 nodes", targets, 180, 3)


def test_an_edge_node_lost_the_other_serves_and_the_api_moves(production: Production) -> None:
    api_before = production.running_on("api")
    # the edge node that runs an API replica, when one does: that replica has to move
    lost = next((edge for edge in EDGES if edge in api_before), EDGES[0])
    (kept,) = (edge for edge in EDGES if edge != lost)
    production.cluster.kill(lost)
    killed = time.monotonic()
    served = failed = 0
    slowest = 0.0
    with production.client(kept) as http:
        while time.monotonic() - killed < 12:  # users of the edge node that is left
            sent = time.monotonic()
            try:
                ok = http.get("/version").status_code == 200
            except httpx.HTTPError:
                ok = False
            served, failed = served + ok, failed + (not ok)
            slowest = max(slowest, time.monotonic() - sent)
            time.sleep(0.2)
    print(
        f"through {kept} in the 12 s after {lost} died: {served} served, {failed} failed, "
        f"slowest answer {slowest:.1f} s"
    )
    assert served > 0
    assert failed == 0, "nginx retries another API replica when one does not answer"

    # Swarm moves tasks off a node only once its managers mark it down (missed heartbeats);
    # until then the dead node's tasks still read as running
    wait_until(
        f"the managers to mark {lost} down",
        lambda: production.cluster.node_table()[lost]["state"] == "down" or None,
        60,
        1,
    )

    def moved() -> list[str] | None:
        api = production.running_on("api")
        return api if len(api) == 3 and lost not in api else None

    api_after = wait_until("3 API replicas on the nodes left", moved, 120, 2)
    print(f"API replicas: {api_before} -> {api_after} ({time.monotonic() - killed:.0f} s)")
    assert len(set(api_after)) == 3
    # nowhere else for the lost node's nginx to go: it waits, pending
    wait_until(
        f"nginx on {kept} only",
        lambda: production.running_on("nginx") == [kept] or None,
        30,
        1,
    )
    with production.client(kept) as http:
        assert http.get("/products?limit=5").status_code == 200
