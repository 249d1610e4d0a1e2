"""The Swarm port: what the engine relies on, run against the fake Swarm and the real adapter on
the real single-node Swarm (with the local registry and the reconciler e2e tests' images)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from reconciler_support.e2e import build_images
from reconciler_support.fakes import FakeClock, FakeSwarm

from reconciler.adapters.clock import SystemClock
from reconciler.adapters.swarm import SwarmAdapter
from reconciler.documents import HOLD
from reconciler.errors import ApplyError, DockerError, ValidationError
from reconciler.imageref import same_image
from reconciler.masking import Masker
from reconciler.ports import Swarm
from reconciler.sopsfiles import SealedSecret
from reconciler.task_views import ServiceTasks
from scripts.remove_stack import remove_stack

CRASH = {"command": ["python3", "-c", "raise SystemExit(3)"]}


@dataclass
class Side:
    swarm: Swarm
    stack: str
    good: tuple[str, str]  # two good images
    missing: str  # an image its registry does not have
    crash: dict[str, Any]  # a service definition whose tasks exit at once
    root: Path
    now: Any

    def compose(
        self, services: dict[str, dict[str, Any]], secrets: dict[str, Any] | None = None
    ) -> Path:
        for name, service in services.items():
            deploy = service.setdefault("deploy", {})
            deploy.setdefault("endpoint_mode", "dnsrr")
            deploy.setdefault("restart_policy", {"delay": "1s"})
            deploy["labels"] = {"driftless.spec-hash": f"h-{name}", "driftless.revision": "r1"}
        path = self.root / f"stack-{len(list(self.root.glob('stack-*')))}.yml"
        doc: dict[str, Any] = {"version": "3.8", "services": services}
        if secrets:
            doc["secrets"] = secrets
        path.write_text(yaml.safe_dump(doc))
        return path

    async def deploy(
        self, services: dict[str, dict[str, Any]], secrets: dict[str, Any] | None = None
    ) -> datetime:
        since = self.now()
        compose = self.compose(services, secrets)
        await self.swarm.deploy(self.stack, compose, prune=True, time_limit=120)
        return since


@pytest.fixture(scope="session")
def contract_images(registry: str, base_image: str) -> dict[str, str]:
    return build_images(registry, base_image, os.environ.get("TEST_STACK_PREFIX", "dlt"))


def _fake(tmp_path: Path) -> Side:
    clock = FakeClock()
    swarm = FakeSwarm(clock, images={"reg.test/app:1", "reg.test/app:2", "reg.test/crash:1"})
    swarm.crashing.add("reg.test/crash:1")
    swarm.objects.add("network bridge")
    good = ("reg.test/app:1", "reg.test/app:2")
    crash = {"image": "reg.test/crash:1"}
    return Side(swarm, "shop", good, "reg.test/app:nope", crash, tmp_path, clock.now)


@pytest.fixture(params=["fake", pytest.param("real", marks=[pytest.mark.e2e, pytest.mark.slow])])
async def side(
    request: pytest.FixtureRequest, tmp_path: Path, unique_name: str
) -> AsyncIterator[Side]:
    if request.param == "fake":
        yield _fake(tmp_path)
        return
    images: dict[str, str] = request.getfixturevalue("contract_images")
    clock = SystemClock()
    swarm = SwarmAdapter(clock=clock, masker=Masker())
    crash = {"image": images["1"], **CRASH}
    good = (images["1"], images["2"])
    try:
        yield Side(swarm, unique_name, good, images["missing"], crash, tmp_path, clock.now)
    finally:
        remove_stack(unique_name)
        await swarm.close()


async def test_a_deployed_service_is_read_back_and_converges(side: Side) -> None:
    since = await side.deploy({"web": {"image": side.good[0]}})
    live = (await side.swarm.live_state(side.stack)).service("web")
    assert live is not None
    assert same_image(side.good[0], live.fields.image)
    assert (live.spec_hash, live.revision) == ("h-web", "r1")
    assert live.replicas_desired == 1
    result = await side.swarm.wait_converged(side.stack, ["web"], since=since, time_limit=90)
    assert result["web"].ok, result["web"].output
    assert result["web"].output == "1/1 tasks running the new spec"


async def test_tasks_that_exit_fail_the_rollout_before_its_time_limit(side: Side) -> None:
    since = await side.deploy({"web": side.crash})
    result = await side.swarm.wait_converged(side.stack, ["web"], since=since, time_limit=90)
    assert not result["web"].ok
    assert "tasks of the new spec failed" in result["web"].output


async def test_restore_puts_back_the_previous_specs_together(side: Side) -> None:
    since = await side.deploy({"web": {"image": side.good[0]}})
    await side.swarm.wait_converged(side.stack, ["web"], since=since, time_limit=90)
    before = (await side.swarm.live_state(side.stack)).service("web")
    assert before is not None
    await side.deploy({"web": {"image": side.good[1]}, "worker": {"image": side.good[0]}})
    await side.swarm.restore(side.stack, {"web": before.spec, "worker": None}, time_limit=90)
    after = await side.swarm.live_state(side.stack)
    assert [s.name for s in after.services] == ["web"]
    assert same_image(side.good[0], after.services[0].fields.image)


async def test_images_are_looked_up_in_their_registry(side: Side) -> None:
    assert (await side.swarm.image_digest(side.good[0]) or "").startswith("sha256:")
    assert await side.swarm.image_digest(side.missing) is None


async def test_missing_external_objects_are_named(side: Side) -> None:
    missing = await side.swarm.missing_objects(["contract-nope"], [], ["bridge"])
    assert missing == ["secret contract-nope"]


async def test_the_nodes_are_listed_with_their_role_and_labels(side: Side) -> None:
    nodes = await side.swarm.nodes()
    managers = [n for n in nodes if n.role == "manager"]
    assert managers
    assert all(n.id and n.hostname and n.os == "linux" for n in nodes)
    assert managers[0].state == "ready"


async def test_sops_secrets_are_created_once_and_only_unused_ones_removed(side: Side) -> None:
    """What the apply creates before its deploy, and what a successful pass removes after: the
    stack's ``driftless.sops`` secrets that no service uses (one still mounted stays)."""
    old, new, spare = (
        SealedSecret("db", f"{side.stack}_db_{h * 12}", "s.sops.yaml", f"value-{h}".encode())
        for h in "abc"
    )
    assert await side.swarm.create_secrets(side.stack, [old, new]) == [old.name, new.name]
    assert await side.swarm.create_secrets(side.stack, [old, new]) == []  # they exist
    mounting = {"web": {"image": side.good[0], "secrets": ["db"]}}
    since = await side.deploy(mounting, {"db": {"external": True, "name": old.name}})
    await side.swarm.wait_converged(side.stack, ["web"], since=since, time_limit=90)
    assert await side.swarm.prune_secrets(side.stack, {spare.name}) == [new.name]  # old: in use
    since = await side.deploy({"web": {"image": side.good[0]}})  # mounts none any more
    await side.swarm.wait_converged(side.stack, ["web"], since=since, time_limit=90)
    await side.swarm.create_secrets(side.stack, [spare])
    assert await side.swarm.prune_secrets(side.stack, {spare.name}) == [old.name]
    assert await side.swarm.prune_secrets(side.stack, set()) == [spare.name]


async def test_a_deploy_naming_a_secret_that_does_not_exist_is_refused(side: Side) -> None:
    missing = {"db": {"external": True, "name": f"{side.stack}_db_000000000000"}}
    with pytest.raises(ApplyError, match="not found"):
        await side.deploy({"web": {"image": side.good[0], "secrets": ["db"]}}, missing)


async def test_a_stack_file_docker_refuses_is_a_validation_error(side: Side) -> None:
    path = side.root / "bad.yml"
    path.write_text('version: "3.8"\nservices: [web, api]\n')
    with pytest.raises(ValidationError, match="docker stack config rejects"):
        await side.swarm.validate_compose(path)


async def test_an_engine_that_does_not_answer_is_a_docker_error(side: Side) -> None:
    if isinstance(side.swarm, FakeSwarm):
        side.swarm.down = True
        with pytest.raises(DockerError, match="Docker engine unreachable"):
            await side.swarm.live_state(side.stack)
        return
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        nobody = f"tcp://127.0.0.1:{unused.getsockname()[1]}"
    swarm = SwarmAdapter(clock=SystemClock(), masker=Masker(), host=nobody)
    try:
        with pytest.raises(DockerError, match="Docker engine unreachable"):
            await swarm.live_state(side.stack)
    finally:
        await swarm.close()


async def test_an_update_held_after_its_canary_then_promoted(side: Side) -> None:
    """The canary step's mechanism: an update whose delay is the hold replaces ``parallelism``
    tasks and waits; the same service deployed with its declared update settings continues,
    and no task runs the new spec before that."""
    since = await side.deploy({"web": {"image": side.good[0], "deploy": {"replicas": 3}}})
    await side.swarm.wait_converged(side.stack, ["web"], since=since, time_limit=90)
    held_update = {"replicas": 3, "update_config": {"parallelism": 1, "delay": HOLD}}
    since = await side.deploy({"web": {"image": side.good[1], "deploy": held_update}})
    tasks = await _until_running(side, "web", new=1)
    assert tasks.update_state == "updating"
    old = [t for t in tasks.tasks if not t.current and t.running]
    assert len(old) == 2
    declared = {"replicas": 3, "update_config": {"parallelism": 1, "delay": "0s"}}
    since = await side.deploy({"web": {"image": side.good[1], "deploy": declared}})
    result = await side.swarm.wait_converged(side.stack, ["web"], since=since, time_limit=120)
    assert result["web"].ok, result["web"].output
    tasks = await side.swarm.tasks(side.stack, "web")
    assert len([t for t in tasks.new if t.running]) == 3


async def _until_running(side: Side, service: str, *, new: int) -> ServiceTasks:
    """The service's tasks once ``new`` tasks of its current spec run (and stay so 5 s)."""
    for _ in range(120):
        tasks = await side.swarm.tasks(side.stack, service)
        if len([t for t in tasks.new if t.running]) >= new and tasks.update_state == "updating":
            await asyncio.sleep(5 if not isinstance(side.swarm, FakeSwarm) else 0)
            again = await side.swarm.tasks(side.stack, service)
            assert len([t for t in again.new if t.running]) == new, "the hold did not hold"
            return again
        await asyncio.sleep(1 if not isinstance(side.swarm, FakeSwarm) else 0)
    raise AssertionError(f"{service}: {new} new task(s) never ran")
