"""The multi-node Swarm that ``scripts/swarm-nodes.sh`` makes, as the tests see it.

``.cache/swarm-nodes/env`` (written by ``swarm-nodes.sh up``) names the nodes, their engine sockets
and addresses. A :class:`Cluster` gives a Docker client per node and drives the script's node
faults (``kill``, ``start``, ``isolate``, ``heal``).
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "swarm-nodes.sh"
ENV_FILE = ROOT / ".cache" / "swarm-nodes" / "env"

#: what a call to an engine that is dead, or a manager without quorum, raises
UNAVAILABLE = (docker.errors.APIError, requests.exceptions.RequestException, OSError)

T = TypeVar("T")


def read_env(path: Path = ENV_FILE) -> dict[str, str]:
    """The ``export KEY=value`` lines of the env file."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            parts = shlex.split(value)
            values[key] = parts[0] if parts else ""
    return values


def run_script(*args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(
            f"swarm-nodes.sh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result.stderr


def wait_until(what: str, check: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    """Call ``check`` until it returns something other than None or False; fail after timeout."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            result = check()
            if result is not None and result is not False:
                return result
        except UNAVAILABLE as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what} (last error: {last})")
        time.sleep(every)


@dataclass
class Node:
    name: str  #: also its hostname, so its name in ``docker node ls``
    role: str  #: "manager" or "worker"
    address: str  #: on the bridge; host-mode published ports answer here
    url: str  #: the engine's socket, for docker.DockerClient(base_url=...)
    client: docker.DockerClient = field(repr=False)

    @property
    def socket(self) -> Path:
        return Path(self.url.removeprefix("unix://"))

    def alive(self) -> bool:
        """The node's engine answers."""
        if not self.socket.exists():
            return False
        try:
            return bool(self.client.ping())
        except UNAVAILABLE:
            return False


class Cluster:
    """The nodes of the multi-node Swarm, with a Docker client each."""

    def __init__(self, env: dict[str, str]) -> None:
        addresses = dict(a.split("=", 1) for a in env["SWARM_NODES_ADDRESSES"].split())
        roles = dict.fromkeys(env["SWARM_NODES_MANAGERS"].split(), "manager")
        roles |= dict.fromkeys(env["SWARM_NODES_WORKERS"].split(), "worker")
        self.nodes: dict[str, Node] = {}
        for url, role in roles.items():
            name = url.split("/")[-2]  # unix:///run/dln/NAME/docker.sock
            # above the 20 s a manager without a leader takes to say so
            client = docker.DockerClient(base_url=url, timeout=30)
            self.nodes[name] = Node(name, role, addresses[name], url, client)
        #: the local registry as the nodes reach it (push and pull through any node)
        self.registry = env["SWARM_NODES_REGISTRY"]
        #: made for these tests and removed after them, with all they left on it
        self.disposable = False

    @classmethod
    def from_env_file(cls, path: Path = ENV_FILE) -> Cluster:
        return cls(read_env(path))

    def close(self) -> None:
        for node in self.nodes.values():
            node.client.close()

    @property
    def managers(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == "manager"]

    @property
    def workers(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == "worker"]

    # ------------------------------------------------------------ faults (swarm-nodes.sh)

    def kill(self, name: str) -> None:
        """A hard death of the node: every process of it at once, as at power-off."""
        run_script("kill", name)

    def start(self, name: str) -> None:
        """Boot a killed node again (same data: it rejoins the Swarm)."""
        run_script("start", name)

    def isolate(self, name: str) -> None:
        run_script("isolate", name)

    def heal(self, name: str) -> None:
        run_script("heal", name)

    def drain(self, name: str) -> None:
        """``docker node update --availability drain``: its tasks move to the other nodes."""
        self._availability(name, "drain")

    def activate(self, name: str) -> None:
        self._availability(name, "active")

    def _availability(self, name: str, availability: str) -> None:
        api = self.manager().client.api
        attrs = api.inspect_node(name)
        spec = {**attrs["Spec"], "Availability": availability}
        api.update_node(attrs["ID"], attrs["Version"]["Index"], spec)

    # ------------------------------------------------------------ read-outs

    def manager(self, *, exclude: tuple[str, ...] = ()) -> Node:
        """A manager whose engine answers."""
        for node in self.managers:
            if node.name not in exclude and node.alive():
                return node
        raise AssertionError("no manager answers")

    def node_table(self, via: Node | None = None) -> dict[str, dict[str, Any]]:
        """Each node's state as a manager sees it: hostname -> {state, availability,
        reachability, leader, labels}."""
        via = via or self.manager()
        table = {}
        for attrs in via.client.api.nodes():
            manager = attrs.get("ManagerStatus") or {}
            table[attrs["Description"]["Hostname"]] = {
                "id": attrs["ID"],
                "role": attrs["Spec"]["Role"],
                "state": attrs["Status"]["State"],
                "availability": attrs["Spec"]["Availability"],
                "reachability": manager.get("Reachability"),
                "leader": bool(manager.get("Leader")),
                "labels": attrs["Spec"].get("Labels") or {},
            }
        return table

    def leader(self) -> Node:
        table = self.node_table()
        return next(self.nodes[name] for name, row in table.items() if row["leader"])

    def all_ready(self) -> bool:
        for via in self.managers:  # every manager agrees that every node is up
            if not via.alive():
                return False
            table = self.node_table(via)
            if len(table) != len(self.nodes) or any(
                row["state"] != "ready"
                or (row["role"] == "manager" and row["reachability"] != "reachable")
                for row in table.values()
            ):
                return False
        return True

    def restore(self, timeout: float = 120) -> None:
        """Every node running, linked and Ready again (after a test's faults)."""
        for node in self.nodes.values():
            if not node.alive():
                self.start(node.name)
            else:
                self.heal(node.name)
        wait_until("every node Ready and every manager reachable", self.all_ready, timeout)

    def tasks(self, service: str, via: Node | None = None) -> list[dict[str, Any]]:
        """The service's tasks that are meant to run, with their node's hostname as "Node"."""
        via = via or self.manager()
        hostnames = {n["ID"]: n["Description"]["Hostname"] for n in via.client.api.nodes()}
        tasks = via.client.api.tasks(filters={"service": service, "desired-state": "running"})
        for task in tasks:
            task["Node"] = hostnames.get(task.get("NodeID", ""), "")
        return list(tasks)

    def running_on(self, service: str, via: Node | None = None) -> list[str]:
        """The hostnames of the service's running tasks, sorted."""
        return sorted(
            t["Node"] for t in self.tasks(service, via) if t["Status"]["State"] == "running"
        )
