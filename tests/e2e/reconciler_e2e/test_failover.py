"""Two agents on one stack with their state in the Swarm (``state.store: swarm``), as two agent
tasks of a Swarm service would be: only the one holding the lease applies, the other waits and
says why on its status page; when the acting one is killed in the middle of verifying a bad
release, the other takes the lease, finishes the rollback from the journal kept in the Swarm, and
pushes the revert exactly once. Real Swarm, registry and git remote; the agents are processes on
this host (the multi-node tests kill whole nodes)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest
from reconciler_support.e2e import Env, _env, free_port, revert_commits, stop, wait_for

from reconciler.adapters.swarm_state import STATE_LABEL

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LEASE = "6s"


def _page(port: int, path: str = "api/status") -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=5) as response:
        body = response.read().decode()
    return json.loads(body) if path.startswith("api/") else body


class Agents:
    """Agent processes on one stack, each with its own config, state directory and page."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.ports: dict[str, int] = {}

    def start(self, name: str) -> subprocess.Popen[str]:
        env = self.env
        port = self.ports.setdefault(name, free_port())
        config = json.loads(env.config_path.read_text())
        config["state_dir"] = str(env.root / f"state-{name}")
        config["http"]["port"] = port
        config["state"] = {"store": "swarm", "lease_duration": LEASE, "holder": f"agent-{name}"}
        path = env.root / f"config-{name}.json"
        path.write_text(json.dumps(config))
        with (env.root / f"agent-{name}.log").open("a") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "reconciler.cli", "--config", str(path), "run"],
                stdout=log, stderr=subprocess.STDOUT, text=True, env=_env(),
            )  # fmt: skip
        self.procs[name] = proc
        return proc

    def status(self, name: str) -> dict[str, Any]:
        return _page(self.ports[name])  # type: ignore[no-any-return]

    def log(self, name: str) -> str:
        return (self.env.root / f"agent-{name}.log").read_text()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def agents(env: Env) -> Iterator[Agents]:
    running = Agents(env)
    try:
        yield running
    finally:
        running.stop_all()
        client = docker.from_env()
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_service(f"{env.stack}-agent-state")
        for config in client.api.configs(filters={"label": f"{STATE_LABEL}={env.stack}"}):
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_config(config["ID"])
        for name in running.procs:
            print(f"--- agent {name}\n" + running.log(name)[-4000:])


def _journal_phase(env: Env) -> str | None:
    """The phase of the pass in flight, from the journal kept in the Swarm."""
    client = docker.from_env()
    try:
        labels = client.api.inspect_service(f"{env.stack}-agent-state")["Spec"]["Labels"]
    except docker.errors.NotFound:
        return None
    name = labels.get("io.driftless.state.journal")
    if not name:
        return None
    import base64

    data = client.api.inspect_config(name)["Spec"]["Data"]
    return str(json.loads(base64.b64decode(data))["phase"])


def test_one_agent_acts_and_another_finishes_its_failed_release_when_it_is_killed(
    env: Env, agents: Agents
) -> None:
    agents.start("a")
    wait_for("agent a to deploy", lambda: agents.status("a").get("last_applied"), 120)
    assert agents.status("a")["lease"]["holding"] is True
    agents.start("b")
    standby = wait_for(
        "agent b's page to answer",
        lambda: (s := agents.status("b"))["lease"] and s["lease"]["why"] and s,
        60,
    )
    assert standby["lease"]["holding"] is False
    assert "held by agent-a/" in standby["lease"]["why"]
    assert "Standby" in _page(agents.ports["b"], "")
    good = env.commit("Bump web and api to 2", web=env.images["2"], api=env.images["2"])
    wait_for("agent a to apply 2", lambda: env.running_tags("api") == ["2", "2"], 120)
    wait_for(
        "agent a to record it",
        lambda: (agents.status("a")["last_applied"] or {}).get("sha") == good,
        60,
    )
    assert '"phase": "apply"' not in agents.log("b")  # b never applied anything
    # b's page shows the acting agent's status (read from the Swarm when it took nothing)
    assert agents.status("b")["lease"]["holding"] is False

    bad = env.commit("Bump web and api to 3", web=env.images["3"], api=env.images["3"])
    wait_for("agent a to verify 3", lambda: _journal_phase(env) == "verify", 120, 0.1)
    agents.procs["a"].send_signal(signal.SIGKILL)
    agents.procs["a"].wait(10)
    killed = time.monotonic()
    wait_for("agent b to take the lease", lambda: agents.status("b")["lease"]["holding"], 60)
    wait_for("the revert", lambda: len(revert_commits(env.remote)) == 1, 180)
    recovered = time.monotonic() - killed
    wait_for("web and api back on 2", lambda: env.running_tags("api") == ["2", "2"], 120)
    assert env.running_tags("web") == ["2"]
    assert env.remote.message().splitlines()[-1] == f"Driftless-Revert-Of: {bad}"
    status = wait_for(
        "agent b to record the rollback",
        lambda: (s := agents.status("b"))["quarantine"] and s,
        60,
    )
    assert status["quarantine"][0]["revision"]["sha"] == bad
    assert status["lease"]["term"] == 2
    print(f"kill of the acting agent -> revert pushed: {recovered:.1f} s")

    # a comes back: it waits for b, and nothing is reverted twice
    agents.start("a")
    wait_for(
        "agent a to wait for b",
        lambda: "held by agent-b/" in (agents.status("a")["lease"] or {}).get("why", ""),
        60,
    )
    time.sleep(8)
    assert len(revert_commits(env.remote)) == 1
    assert stop(agents.procs["b"], signal.SIGTERM, 60) == 0
    # b released the lease when it stopped: a takes it at once, not after the lease's duration
    wait_for("agent a to act again", lambda: agents.status("a")["lease"]["holding"], 5)
