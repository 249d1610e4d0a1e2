"""The production prometheus.yml on a real Docker Swarm: every task of a service is its own
target through Swarm's DNS (`tasks.<service>`), not the service's load-balanced name.

A test stack runs Prometheus with the production prometheus.yml and rule files mounted as Swarm
configs (unchanged), next to a `node-exporter` service with two replicas on the `monitoring`
overlay network. Both services run the Debian builds of the binaries (bind-mounted into the local
base image: no image registry is reachable here). The other jobs of the file find no task in this
stack, which is what an absent service looks like to Prometheus.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from obs_support import files, tools
from obs_support.lab import free_port, http_get, wait_until

from scripts.remove_stack import remove_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def swarm_prometheus(
    tmp_path_factory: pytest.TempPathFactory, base_image: str
) -> Iterator[tuple[str, str]]:
    if docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() != "active":
        pytest.fail("no active Docker Swarm: run scripts/testenv.sh up", pytrace=False)
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    stack = f"{prefix}dns{os.urandom(3).hex()}"
    work: Path = tmp_path_factory.mktemp("swarm-dns")
    port = free_port()
    prometheus = tools.newest("prometheus")
    compose = {
        "version": "3.8",
        "services": {
            "prometheus": {
                "image": base_image,
                "command": [
                    "/opt/prometheus",
                    "--config.file=/etc/prometheus/prometheus.yml",
                    "--storage.tsdb.path=/tmp/prometheus",
                    "--web.listen-address=:9090",
                ],
                "configs": [
                    {"source": "prometheus_conf", "target": "/etc/prometheus/prometheus.yml"},
                    {"source": "alerts", "target": "/etc/prometheus/rules/alerts.yml"},
                    {"source": "recording", "target": "/etc/prometheus/rules/recording.yml"},
                ],
                "volumes": [
                    {
                        "type": "bind",
                        "source": prometheus,
                        "target": "/opt/prometheus",
                        "read_only": True,
                    }
                ],
                "ports": [{"target": 9090, "published": port, "mode": "host"}],
                "networks": ["monitoring"],
                "labels": {"driftless.test": prefix},
                "deploy": {
                    "replicas": 1,
                    "endpoint_mode": "dnsrr",
                    "labels": {"driftless.test": prefix},
                },
            },
            "node-exporter": {
                "image": base_image,
                "command": [
                    "/opt/node_exporter",
                    "--web.listen-address=:9100",
                    "--collector.disable-defaults",
                    "--collector.loadavg",
                ],
                "volumes": [
                    {
                        "type": "bind",
                        "source": tools.debian12("prometheus-node-exporter"),
                        "target": "/opt/node_exporter",
                        "read_only": True,
                    }
                ],
                "networks": ["monitoring"],
                "labels": {"driftless.test": prefix},
                "deploy": {
                    "replicas": 2,
                    "endpoint_mode": "dnsrr",
                    "labels": {"driftless.test": prefix},
                },
            },
        },
        "networks": {"monitoring": {"driver": "overlay", "labels": {"driftless.test": prefix}}},
        "configs": {
            "prometheus_conf": {"file": str(files.PROMETHEUS_CONFIG)},
            "alerts": {"file": str(files.RULES_DIR / "alerts.yml")},
            "recording": {"file": str(files.RULES_DIR / "recording.yml")},
        },
    }
    stack_file = work / "stack.yml"
    stack_file.write_text(json.dumps(compose))
    deployed = docker("stack", "deploy", "-c", str(stack_file), stack)
    try:
        assert deployed.returncode == 0, deployed.stderr
        url = f"http://127.0.0.1:{port}"
        wait_until("Prometheus in the Swarm", lambda: bool(http_get(f"{url}/-/ready")), 120)
        yield url, stack
    finally:
        remove_stack(stack)


def api(url: str, path: str) -> Any:
    return json.loads(http_get(f"{url}/api/v1/{path}"))["data"]


def test_every_task_is_scraped_on_its_own(swarm_prometheus: tuple[str, str]) -> None:
    url, stack = swarm_prometheus

    def two_node_exporters_up() -> bool:
        targets = api(url, "targets")["activeTargets"]
        node = [t for t in targets if t["labels"]["job"] == "node-exporter"]
        return len(node) == 2 and all(t["health"] == "up" for t in node)

    wait_until("two node-exporter tasks discovered and up", two_node_exporters_up, 90)
    targets = api(url, "targets")["activeTargets"]
    node = [t for t in targets if t["labels"]["job"] == "node-exporter"]
    addresses = {t["labels"]["instance"] for t in node}
    assert len(addresses) == 2, "each task has its own address"
    tasks = docker(
        "service", "ps", "-q", "--filter", "desired-state=running", f"{stack}_node-exporter"
    ).stdout.split()
    task_ips = set()
    for task in tasks:
        info = json.loads(docker("inspect", task).stdout)[0]
        for attachment in info.get("NetworksAttachments") or []:
            task_ips |= {a.split("/")[0] for a in attachment["Addresses"]}
    assert {a.rsplit(":", 1)[0] for a in addresses} <= task_ips
    assert all(t["discoveredLabels"]["__meta_dns_name"] == "tasks.node-exporter" for t in node)


def test_rules_from_the_mounted_files_load(swarm_prometheus: tuple[str, str]) -> None:
    url, _ = swarm_prometheus
    groups = api(url, "rules")["groups"]
    names = {r["name"] for g in groups for r in g["rules"]}
    assert {"ApiDown", "job:http_requests:rate5m", "NodeDown"} <= names


def test_a_missing_service_has_no_targets_rather_than_a_wrong_one(
    swarm_prometheus: tuple[str, str],
) -> None:
    url, _ = swarm_prometheus
    targets = api(url, "targets")["activeTargets"]
    assert not [t for t in targets if t["labels"]["job"] == "api"]
