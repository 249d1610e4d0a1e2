"""The reconciler agent as the production stack runs it on several nodes: a Swarm service on the
managers (``desired-state/base/stack.yml``'s ``reconciler``: its user, environment, restart
policy and placement), its state in the Swarm under a lease, deploying a small stack from a git
remote onto the multi-node Swarm of ``scripts/swarm-nodes.sh``.

What differs from production, because of where it runs:

* the docker socket each task mounts is its own node's (``/run/dln/{{.Node.Hostname}}/...``, a
  Swarm mount template): the nodes share this machine's filesystem, where ``/var/run/docker.sock``
  is another engine's;
* the git remote is a bare repository bind-mounted into the task (every node sees the same
  directory); no git server is reachable from the nodes;
* its page is published in host mode on each manager's address (``http://10.77.0.1x:9480/``).

The deployed stack, ``web``, is the reconciler e2e tests' small HTTP service on the workers,
checked through the agent's probe container on its network (``driftless.health.network``): tag 1
and 2 are good, tag 3 answers 500 on /health.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker.errors
import httpx
import yaml
from reconciler_support.e2e import build_images
from reconciler_support.gitrepo import Remote, git

from multinode_support.cluster import ROOT, UNAVAILABLE, Cluster, Node, wait_until

PRODUCTION = yaml.safe_load((ROOT / "desired-state" / "base" / "stack.yml").read_text())
STACK_DIR = "desired-state/e2e"
PAGE_PORT = 9480
AGENT_UID = 10002


def build_agent_images(host_registry: str, base_image: str, prefix: str) -> dict[str, str]:
    """The reconciler image and the web service's tags 1, 2 (good) and 3 (bad), pushed to the
    local registry; host references (``127.0.0.1:5000/...``)."""
    env = {**os.environ, "REGISTRY": host_registry}
    subprocess.run(
        [str(ROOT / "scripts" / "build-images.sh"), "app", "e2e"],
        env=env, check=True, capture_output=True, timeout=1800,
    )  # fmt: skip
    images = build_images(host_registry, base_image, prefix)
    images["agent"] = f"{host_registry}/driftless/reconciler:e2e"
    return images


def app_stack(
    replicas: int = 2,
    health_timeout: str = "20s",
    monitor: str = "2s",
    parallelism: int = 1,
    release: str = "",
) -> str:
    """``web`` on the workers, checked through the probe on its network: its /health must
    answer 200 within ``health_timeout``; Swarm updates ``parallelism`` tasks at a time and
    watches each new one for ``monitor``. ``release`` (an environment variable) makes each
    release a desired state of its own: one the agent saw fail already is refused, not tried."""
    return yaml.safe_dump(
        {
            "version": "3.8",
            "services": {
                "web": {
                    "networks": ["back"],
                    "environment": {"NODE": "{{.Node.Hostname}}", "RELEASE": release},
                    "deploy": {
                        "replicas": replicas,
                        "endpoint_mode": "dnsrr",
                        "placement": {"constraints": ["node.role == worker"]},
                        "labels": {
                            "driftless.health.url": "http://web:8080/health",
                            "driftless.health.network": "back",
                            "driftless.health.timeout": health_timeout,
                            "driftless.health.interval": "1s",
                            "driftless.rollout.canary": "0",
                        },
                        "update_config": {
                            "order": "start-first",
                            "monitor": monitor,
                            "parallelism": parallelism,
                        },
                        "rollback_config": {"order": "start-first", "monitor": "1s"},
                        "restart_policy": {"condition": "any", "delay": "1s"},
                    },
                }
            },
            "networks": {"back": {"driver": "overlay", "attachable": True}},
        },
        sort_keys=False,
    )


@dataclass
class AgentService:
    """The agent service (stack ``<prefix>ag``) deploying stack ``<prefix>app`` from ``remote``."""

    cluster: Cluster
    work: Path
    images: dict[str, str]  #: on the nodes' registry address
    prefix: str
    lease: str = "15s"  #: state.lease_duration (the production default)
    health_timeout: str = "20s"  #: how long web's health check may fail before the verify does
    path: str = STACK_DIR  #: the desired-state folder in the remote
    #: more of the agent's environment (over the test's), and more mounts
    environment: dict[str, str] = field(default_factory=dict)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    remote: Remote = field(init=False)

    def __post_init__(self) -> None:
        self.name = f"{self.prefix}ag"
        self.app = f"{self.prefix}app"
        self.work.mkdir(parents=True, exist_ok=True)
        self.remote = Remote(self.work, self.path)
        git(self.remote.bare, "config", "core.sharedRepository", "0777")
        for path in (self.work, *self.work.rglob("*")):
            shutil.chown(path, AGENT_UID)  # git refuses a repository another user owns
            path.chmod(0o777 if path.is_dir() else 0o666)

    # ------------------------------------------------------------------ git

    def commit(self, message: str, tag: str, *, stack: str | None = None) -> str:
        files = {f"{STACK_DIR}/images.yaml": f"web: {self.images[tag]}\n"}
        if stack is not None or not self.remote.head():
            files[f"{STACK_DIR}/stack.yml"] = stack or app_stack(health_timeout=self.health_timeout)
        return self.write(files, message)

    def write(self, files: dict[str, str], message: str) -> str:
        """Commit ``files`` (paths in the repository) and push them."""
        with _safe():
            return self.remote.write(files, message)

    def reverts(self) -> list[str]:
        """The revert commits on the remote's branch (subject ``Revert ...``)."""
        with _safe():
            lines = self.remote.log("%H %s")
        return [line for line in lines if line.split(" ", 1)[1].startswith("Revert ")]

    def reverts_of(self, sha: str) -> int:
        """The revert commits on the remote's branch that name ``sha`` in their trailer."""
        with _safe():
            bodies = git(self.remote.bare, "log", "--format=%B%x00", "main")
        return sum(f"Driftless-Revert-Of: {sha}" in body for body in bodies.split("\0"))

    def last_message(self) -> str:
        with _safe():
            return self.remote.message()

    # ------------------------------------------------------------------ the service

    def compose(self, replicas: int) -> dict[str, Any]:
        prod = PRODUCTION["services"]["reconciler"]
        env = {
            k: v
            for k, v in prod["environment"].items()
            if not k.endswith("_FILE") and "SOPS" not in k and "ANALYSIS" not in k
        }
        env |= {
            "RECONCILER_STACK": self.app,
            "RECONCILER_ENVIRONMENT": "e2e",
            "RECONCILER_GIT__URL": "file:///repo/remote.git",
            "RECONCILER_GIT__BRANCH": "main",
            "RECONCILER_GIT__PATH": self.path,
            "RECONCILER_SYNC__INTERVAL": "2s",
            "RECONCILER_SYNC__JITTER": "0s",
            "RECONCILER_SYNC__RETRY_INTERVAL": "2s",
            "RECONCILER_STATE__LEASE_DURATION": self.lease,
            "RECONCILER_HTTP__PORT": str(PAGE_PORT),
            "RECONCILER_HEALTH__PROBE_IMAGE": self.images["agent"],
            "RECONCILER_HEALTH__PROBE_NETWORK": f"{self.name}_probes",
            "RECONCILER_TIMEOUTS__VERIFY": "90s",
            "RECONCILER_TIMEOUTS__ROLLBACK": "90s",
        } | self.environment
        deploy = {
            key: prod["deploy"][key] for key in ("placement", "update_config", "restart_policy")
        }
        return {
            "version": "3.8",
            "services": {
                "reconciler": {
                    "image": self.images["agent"],
                    "user": prod["user"],
                    "environment": env,
                    "volumes": [
                        {
                            "type": "bind",
                            "source": "/run/dln/{{.Node.Hostname}}/docker.sock",
                            "target": "/var/run/docker.sock",
                        },
                        {"type": "bind", "source": str(self.work), "target": "/repo"},
                        "state:/var/lib/reconciler",
                        *self.mounts,
                    ],
                    "networks": ["probes"],
                    "ports": [{"target": PAGE_PORT, "published": PAGE_PORT, "mode": "host"}],
                    "stop_grace_period": "30s",
                    "deploy": {
                        **deploy,
                        "replicas": replicas,
                        "endpoint_mode": "dnsrr",
                        "labels": {"driftless.test": self.prefix},
                    },
                }
            },
            "networks": {"probes": {"driver": "overlay", "attachable": True}},
            "volumes": {"state": {}},
        }

    def deploy(self, replicas: int = 1, via: Node | None = None) -> None:
        path = self.work / "agent.yml"
        path.write_text(yaml.safe_dump(self.compose(replicas)))
        node = via or self.cluster.manager()
        subprocess.run(
            ["docker", "-H", node.url, "stack", "deploy", "--detach=true", "-c", str(path),
             self.name],
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def remove(self) -> None:
        """The agent first, and only when its tasks have stopped (until then it would deploy the
        app again), then the app, its volumes and the agent's state."""
        client = self.cluster.manager().client
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_service(f"{self.name}_reconciler")
        wait_until("the agent's tasks stopped", lambda: self._stopped(self.name), 90)
        app = {"label": f"com.docker.stack.namespace={self.app}"}
        services = [s["Spec"]["Name"] for s in client.api.services(filters=app)]
        for name in (*services, f"{self.app}-agent-state"):
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_service(name)
        wait_until("the app's tasks stopped", lambda: self._stopped(self.app), 120)
        for node in self.cluster.nodes.values():  # its data: a next run starts from nothing
            if node.alive():
                for volume in node.client.volumes.list(filters=app):
                    with contextlib.suppress(docker.errors.APIError):
                        volume.remove(force=True)
        for config in client.api.configs(filters={"label": f"io.driftless.state={self.app}"}):
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_config(config["ID"])
        networks = [n["Name"] for n in client.api.networks(filters=app)]
        for network in (*networks, f"{self.name}_probes"):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                client.networks.get(network).remove()

    def _stopped(self, stack: str) -> bool:
        """No container of the stack runs on a node that answers; the probes and what a node
        killed earlier kept of its tasks are removed."""
        for node in self.cluster.nodes.values():
            if not node.alive():
                continue
            containers = node.client.containers
            for probe in containers.list(
                all=True, filters={"label": f"driftless.probe={self.app}"}
            ):
                probe.remove(force=True)
            label = {"label": f"com.docker.stack.namespace={stack}"}
            if containers.list(filters=label):
                return False
            for stale in containers.list(all=True, filters=label):
                stale.remove(force=True)
        return True

    # ------------------------------------------------------------------ read-outs

    def tasks(self) -> list[dict[str, Any]]:
        return self.cluster.tasks(f"{self.name}_reconciler")

    def running_on(self) -> list[str]:
        return self.cluster.running_on(f"{self.name}_reconciler")

    def page(self, node: str, path: str = "api/status") -> Any:
        """The agent's page on a manager's address (raises when no task answers there)."""
        address = self.cluster.nodes[node].address
        response = httpx.get(f"http://{address}:{PAGE_PORT}/{path}", timeout=5)
        response.raise_for_status()
        return response.json() if path.startswith("api/") else response.text

    def status_on(self, node: str) -> dict[str, Any] | None:
        try:
            return self.page(node)  # type: ignore[no-any-return]
        except httpx.HTTPError:
            return None

    def holder_status(self) -> dict[str, Any] | None:
        """The status page of the agent task that holds the lease."""
        lease = self.leaseholder()
        status = self.status_on(lease["node"]) if lease else None
        return status if status and status["lease"] and status["lease"]["holding"] else None

    def applied(self, sha: str) -> bool:
        """The acting agent says it last applied ``sha``."""
        status = self.holder_status()
        return bool(status and (status["last_applied"] or {}).get("sha") == sha)

    def state(self) -> dict[str, str]:
        """The labels of the lease service (``<app>-agent-state``): lease, status, journal."""
        api = self.cluster.manager().client.api
        try:
            return dict(api.inspect_service(f"{self.app}-agent-state")["Spec"]["Labels"])
        except docker.errors.NotFound:
            return {}

    def leaseholder(self) -> dict[str, Any] | None:
        raw = self.state().get("io.driftless.state.lease")
        lease = json.loads(raw) if raw else None
        return lease if lease and lease.get("holder") else None

    def journal_phase(self) -> str | None:
        """The phase of the pass in flight, from the journal kept in the Swarm."""
        name = self.state().get("io.driftless.state.journal")
        if not name:
            return None
        data = self.cluster.manager().client.api.inspect_config(name)["Spec"]["Data"]
        return str(json.loads(base64.b64decode(data))["phase"])

    def web(self) -> dict[str, Any] | None:
        with contextlib.suppress(docker.errors.NotFound):
            return dict(self.cluster.manager().client.api.inspect_service(f"{self.app}_web"))
        return None

    def web_tag(self) -> str | None:
        """The tag of the web image in the service's spec (digest aside)."""
        service = self.web()
        if service is None:
            return None
        image = service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        return str(image.split("@")[0].rsplit(":", 1)[1])

    def web_revision(self) -> str | None:
        service = self.web()
        return None if service is None else service["Spec"]["Labels"].get("driftless.revision")

    def web_replicas(self) -> int:
        service = self.web()
        return 0 if service is None else int(service["Spec"]["Mode"]["Replicated"]["Replicas"])

    def web_running_tags(self) -> list[str]:
        """The tag of each running web task's image, sorted."""
        tags = []
        for task in self.cluster.tasks(f"{self.app}_web"):
            if task["Status"]["State"] == "running":
                image = task["Spec"]["ContainerSpec"]["Image"]
                tags.append(image.split("@")[0].rsplit(":", 1)[1])
        return sorted(tags)

    def timeline(self, killed: float) -> dict[str, float]:
        """Seconds from the kill (``time.time()``) to what the failover went through: the new
        agent task made, running, taking the lease, and the revert commit."""
        out: dict[str, float] = {}
        tasks = [t for t in self.tasks() if t["Status"]["State"] == "running"]
        if tasks:  # a task Swarm made in place of the lost one
            task = max(tasks, key=lambda t: t["CreatedAt"])
            if _iso(task["CreatedAt"]) > killed:
                out["task made"] = _iso(task["CreatedAt"]) - killed
                out["task running"] = _iso(task["Status"]["Timestamp"]) - killed
        lease = self.leaseholder()
        if lease:
            out["lease taken"] = _iso(lease["acquired_at"]) - killed
        with _safe():
            stamps = git(self.remote.bare, "log", "-1", "--format=%ct", "--grep=^Revert ", "main")
        if stamps:
            out["revert committed"] = int(stamps) - killed
        return out

    def story(self, node: str) -> str:
        """What the agent on ``node`` did other than no-op passes: its log's messages, timed."""
        lines = []
        for line in self.logs_of(node).splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                message = entry["message"]
                if not message.startswith(("fetching ", "rendering ", "planning ", "pass noop")):
                    lines.append(f"{entry['time'][11:23]} {message[:160]}")
        return "\n".join(lines)

    def logs_of(self, node: str, tail: int | str = "all") -> str:
        """The log of the agent task(s) on one node."""
        out = []
        client = self.cluster.nodes[node].client
        label = f"com.docker.swarm.service.name={self.name}_reconciler"
        with contextlib.suppress(*UNAVAILABLE):
            for container in client.containers.list(all=True, filters={"label": label}):
                text = container.logs(tail=tail).decode(errors="replace")
                out.append(f"--- {node} {container.name}\n{text}")
        return "\n".join(out)

    def logs(self, tail: int = 80) -> str:
        """The agent tasks' last log lines, from every node that answers."""
        return "\n".join(
            self.logs_of(node.name, tail) for node in self.cluster.managers if node.alive()
        )


@contextlib.contextmanager
def _safe() -> Iterator[None]:
    """Root's git commands on the repositories the agent (uid 10002) owns: git reads
    ``safe.directory`` only from protected (global or system) config."""
    saved = os.environ.get("GIT_CONFIG_GLOBAL")
    with tempfile.NamedTemporaryFile("w", suffix=".gitconfig") as config:
        config.write("[safe]\n\tdirectory = *\n")
        config.flush()
        os.environ["GIT_CONFIG_GLOBAL"] = config.name
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("GIT_CONFIG_GLOBAL", None)
            else:
                os.environ["GIT_CONFIG_GLOBAL"] = saved


def _iso(stamp: str) -> float:
    """A timestamp of the Engine API or the lease (nanoseconds cut to micro) as epoch seconds."""
    head, _, tail = stamp.partition(".")
    frac = "".join(c for c in tail if c.isdigit())[:6]
    zone = tail[len("".join(c for c in tail if c.isdigit())) :] if tail else stamp[19:]
    zone = "+00:00" if zone in ("Z", "") else zone
    return datetime.fromisoformat(f"{head[:19]}.{frac or '0'}{zone}").timestamp()


def since(start: float) -> float:
    return time.monotonic() - start
