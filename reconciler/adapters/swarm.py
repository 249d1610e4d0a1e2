"""Docker Swarm through the Docker SDK (read, diff, watch, roll back) and the docker CLI (only
``docker stack deploy`` and ``docker stack config``, so compose files mean exactly what Docker
says they mean).

Every Docker error is translated here: an unreachable engine or registry is a ``DockerError``
(retry later), a failed deploy an ``ApplyError``, a rollback that does not converge a
``RollbackError``. Blocking SDK calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
from loguru import logger

from reconciler.errors import (
    ApplyError,
    DockerError,
    PreflightError,
    RollbackError,
    ValidationError,
    mask_secrets,
)
from reconciler.fields import fields_from_swarm
from reconciler.models import CheckResult, LiveService, LiveState
from reconciler.ports import Clock
from reconciler.serialize import parse_time
from reconciler.types import JSONDict

T = TypeVar("T")
STACK_LABEL = "com.docker.stack.namespace"
PROBE_LABEL = "driftless.probe"
_FAILED_UPDATE = {"paused", "rollback_started", "rollback_paused", "rollback_completed"}
_TASK_FAILED = {"failed", "rejected", "orphaned"}
#: task states in which its container may be running (and answering)
_TASK_ALIVE = {"assigned", "accepted", "preparing", "starting", "running"}
#: tasks of the new spec that failed since the apply before the verify gives up early
FAILED_TASKS_LIMIT = 3
_CONNECTION_ERRORS = (requests.exceptions.ConnectionError, ConnectionError, OSError)


def _docker_error(exc: BaseException, what: str) -> Exception:
    if isinstance(exc, docker.errors.APIError):
        text = exc.explanation or str(exc)
        return DockerError(f"{what}: {mask_secrets(str(text))}")
    return DockerError(f"{what}: Docker engine unreachable: {mask_secrets(str(exc))}")


def _canon(value: Any) -> Any:
    """A task's spec and its service's template, compared without Docker's fill-ins."""
    if isinstance(value, dict):
        out = {k: _canon(v) for k, v in value.items() if k not in ("Runtime",)}
        return {k: v for k, v in out.items() if v not in (None, {}, [], "", False)}
    if isinstance(value, list):
        return [_canon(v) for v in value]
    return value


def _task_current(task: JSONDict, template: JSONDict) -> bool:
    return bool(_canon(task.get("Spec") or {}) == _canon(template))


class SwarmAdapter:
    def __init__(
        self,
        *,
        clock: Clock,
        cli: str = "docker",
        host: str = "",
        poll_interval: float = 0.25,
    ) -> None:
        self._clock = clock
        self._cli = cli
        self._host = host
        self._poll = poll_interval
        self._client: docker.DockerClient | None = None
        self._stack_config: bool | None = None

    # ---------------------------------------------------------------- plumbing

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            if self._host:
                self._client = docker.DockerClient(base_url=self._host, timeout=60)
            else:
                self._client = docker.from_env(timeout=60)
        return self._client

    async def _call(self, what: str, func: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(func)
        except docker.errors.DockerException as exc:
            raise _docker_error(exc, what) from exc
        except _CONNECTION_ERRORS as exc:
            raise _docker_error(exc, what) from exc

    def _cli_env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self._host:
            env["DOCKER_HOST"] = self._host
        return env

    async def _cli_run(self, args: Sequence[str], time_limit: float) -> tuple[int, str, str]:
        try:
            proc = await asyncio.create_subprocess_exec(
                self._cli,
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._cli_env(),
            )
        except FileNotFoundError as exc:
            raise DockerError(f"the docker CLI ({self._cli}) is not installed") from exc
        try:
            async with asyncio.timeout(time_limit):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return -1, "", f"timed out after {time_limit:.0f}s"
        return (
            proc.returncode or 0,
            mask_secrets(out.decode(errors="replace")),
            mask_secrets(err.decode(errors="replace")),
        )

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---------------------------------------------------------------- reading

    async def ping(self) -> None:
        def work() -> None:
            info = self.client.info()
            swarm = info.get("Swarm") or {}
            if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
                raise DockerError("this Docker engine is not a Swarm manager")

        await self._call("ping", work)

    async def live_state(self, stack: str) -> LiveState:
        def work() -> LiveState:
            api = self.client.api
            services = api.services(filters={"label": f"{STACK_LABEL}={stack}"})
            ids = {s["ID"] for s in services}
            tasks = [
                t
                for t in api.tasks(filters={"desired-state": "running"})
                if t.get("ServiceID") in ids
            ]
            by_service: dict[str, list[JSONDict]] = {}
            for task in tasks:
                by_service.setdefault(task["ServiceID"], []).append(task)
            out = []
            for svc in services:
                spec = svc["Spec"]
                fields = fields_from_swarm(spec)
                own = by_service.get(svc["ID"], [])
                running = sum(1 for t in own if (t.get("Status") or {}).get("State") == "running")
                desired = fields.replicas if fields.replicas is not None else len(own)
                labels = spec.get("Labels") or {}
                out.append(
                    LiveService(
                        name=str(spec["Name"]).removeprefix(f"{stack}_"),
                        id=svc["ID"],
                        version=int(svc["Version"]["Index"]),
                        fields=fields,
                        spec_hash=labels.get("driftless.spec-hash"),
                        revision=labels.get("driftless.revision"),
                        replicas_running=running,
                        replicas_desired=desired,
                        update_state=(svc.get("UpdateStatus") or {}).get("State"),
                        spec=spec,
                    )
                )
            return LiveState(stack=stack, services=tuple(sorted(out, key=lambda s: s.name)))

        return await self._call("reading the live services", work)

    async def image_exists(self, image: str) -> bool:
        def work() -> bool:
            try:
                self.client.api.inspect_distribution(image)
            except docker.errors.NotFound:
                return False
            except docker.errors.APIError as exc:
                text = str(exc.explanation or exc)
                lower = text.lower()
                if exc.status_code in (401, 403) or any(
                    w in lower
                    for w in (
                        "unauthorized",
                        "denied",
                        "authentication required",
                        "no basic auth credentials",
                    )
                ):
                    # private registries answer the same for "missing" and "not yours to read"
                    raise PreflightError(
                        f"image {image}: the registry refused access ({mask_secrets(text)}); "
                        "check that it exists and that the agent is logged in to its registry "
                        "(docker login with the agent's DOCKER_CONFIG)"
                    ) from exc
                if any(w in lower for w in ("manifest unknown", "not found")):
                    return False
                raise
            return True

        return await self._call(f"checking image {image}", work)

    async def missing_objects(
        self, secrets_: Sequence[str], configs: Sequence[str], networks: Sequence[str]
    ) -> list[str]:
        def work() -> list[str]:
            api = self.client.api
            missing = []
            for name in secrets_:
                if not any(s["Spec"]["Name"] == name for s in api.secrets(filters={"name": name})):
                    missing.append(f"secret {name}")
            for name in configs:
                if not any(c["Spec"]["Name"] == name for c in api.configs(filters={"name": name})):
                    missing.append(f"config {name}")
            for name in networks:
                if not any(n["Name"] == name for n in api.networks(names=[name])):
                    missing.append(f"network {name}")
            return missing

        return await self._call("checking secrets, configs and networks", work)

    # ---------------------------------------------------------------- CLI

    async def _has_stack_config(self) -> bool:
        """Whether this docker CLI has ``docker stack config`` (20.10 builds may lack it)."""
        if self._stack_config is None:
            try:
                code, out, err = await self._cli_run(["stack", "--help"], 30)
            except DockerError:
                code, out, err = 1, "", ""
            self._stack_config = code == 0 and any(
                line.split()[:1] == ["config"] for line in (out + err).splitlines()
            )
            if not self._stack_config:
                logger.warning(
                    "{} has no `docker stack config`: skipping Docker's own schema check",
                    self._cli,
                )
        return self._stack_config

    async def validate_compose(self, path: Path) -> None:
        if not await self._has_stack_config():
            return
        code, _, err = await self._cli_run(["stack", "config", "-c", str(path)], 60)
        if code != 0:
            text = err.strip().replace(str(path), "stack.yml")
            raise ValidationError(
                f"docker stack config rejects the rendered stack: {text}", problems=(text,)
            )

    async def deploy(self, stack: str, compose: Path, *, prune: bool, time_limit: float) -> str:
        args = ["stack", "deploy", "--with-registry-auth", "--resolve-image", "always"]
        if prune:
            args.append("--prune")
        args += ["-c", str(compose), stack]
        code, out, err = await self._cli_run(args, time_limit)
        if code != 0:
            raise ApplyError(
                f"docker stack deploy failed: {err.strip().splitlines()[-1] if err else code}",
                detail=(out + err).strip(),
            )
        return (out + err).strip()

    # ---------------------------------------------------------------- watching

    def _service_state(self, stack: str, name: str, since: datetime) -> tuple[str, str]:
        """("ok" | "pending" | "failed" | "gone", message) for one service, now."""
        api = self.client.api
        try:
            svc = api.inspect_service(f"{stack}_{name}")
        except docker.errors.NotFound:
            return "gone", "service does not exist"
        spec = svc["Spec"]
        update = svc.get("UpdateStatus") or {}
        state = update.get("State")
        started = update.get("StartedAt")
        recent = started is None or parse_time(started).timestamp() >= since.timestamp() - 2
        if state in _FAILED_UPDATE and recent:
            return "failed", f"Swarm update {state}: {update.get('Message', '')}".strip()
        template = spec["TaskTemplate"]
        tasks = api.tasks(filters={"service": svc["ID"]})
        current: list[JSONDict] = []  # tasks of the spec just deployed
        old: list[JSONDict] = []  # tasks of an earlier one
        for t in tasks:
            (current if _task_current(t, template) else old).append(t)
        failures = [
            t
            for t in current
            if (t.get("Status") or {}).get("State") in _TASK_FAILED
            and parse_time(t["Status"]["Timestamp"]).timestamp() >= since.timestamp() - 2
        ]
        if len(failures) >= FAILED_TASKS_LIMIT:
            err = failures[0]["Status"].get("Err") or failures[0]["Status"].get("Message", "")
            return "failed", f"{len(failures)} tasks of the new spec failed: {err}"
        mode = spec.get("Mode") or {}
        if "ReplicatedJob" in mode or "GlobalJob" in mode:
            done = [t for t in current if t["Status"]["State"] == "complete"]
            total = (mode.get("ReplicatedJob") or {}).get("TotalCompletions")
            if total is None or len(done) >= int(total):
                return "ok", f"job complete ({len(done)} tasks)"
            return "pending", f"job: {len(done)}/{total} tasks complete"
        if state == "updating":
            return "pending", "Swarm rolling update in progress"
        active = [t for t in tasks if t.get("DesiredState") == "running"]
        stale = [t for t in old if t.get("DesiredState") == "running"]
        running = [
            t
            for t in current
            if t.get("DesiredState") == "running" and t["Status"]["State"] == "running"
        ]
        want = (mode.get("Replicated") or {}).get("Replicas")
        want_n = len(active) if want is None else int(want)
        if stale:
            return "pending", f"{len(stale)} task(s) still run the previous spec"
        # a replaced task may still be running while it stops: until it has, it can answer the
        # health checks (and keep its DNS name) in place of the new spec
        stopping = [
            t
            for t in old
            if t.get("DesiredState") != "running"
            and (t.get("Status") or {}).get("State") in _TASK_ALIVE
        ]
        if stopping:
            return "pending", f"{len(stopping)} task(s) of the previous spec still stopping"
        if len(running) < want_n or (want is None and not running and active):
            last = next((t for t in active if t["Status"]["State"] != "running"), None)
            detail = ""
            if last is not None:
                st = last["Status"]
                detail = f" (a task is {st['State']}: {st.get('Err') or st.get('Message', '')})"
            return "pending", f"{len(running)}/{want_n} tasks running{detail}"
        return "ok", f"{len(running)}/{want_n} tasks running the new spec"

    async def wait_converged(
        self,
        stack: str,
        services: Sequence[str],
        *,
        since: datetime,
        time_limit: float,
        expected_gone: Sequence[str] = (),
    ) -> dict[str, CheckResult]:
        """Poll until every service runs its current spec healthy (or is gone, for removed
        ones), fails, or ``time_limit`` passes. One ``CheckResult`` (kind ``swarm``) each."""
        start = self._clock.monotonic()
        pending = dict.fromkeys(services, "")
        gone = dict.fromkeys(expected_gone, "")
        results: dict[str, CheckResult] = {}
        attempts = 0
        while pending or gone:
            attempts += 1
            for name in list(pending):
                state, message = await self._call(
                    f"watching {name}", functools.partial(self._service_state, stack, name, since)
                )
                elapsed = self._clock.monotonic() - start
                if state in ("ok", "failed", "gone"):
                    results[name] = CheckResult(
                        name=name,
                        ok=state == "ok",
                        kind="swarm",
                        output=message,
                        attempts=attempts,
                        elapsed_seconds=elapsed,
                    )
                    del pending[name]
                else:
                    pending[name] = message
            for name in list(gone):
                state, _ = await self._call(
                    f"watching {name}", functools.partial(self._service_state, stack, name, since)
                )
                if state == "gone":
                    results[name] = CheckResult(name=name, ok=True, kind="swarm", output="removed")
                    del gone[name]
            if not pending and not gone:
                break
            if self._clock.monotonic() - start >= time_limit:
                for name, message in {**pending, **gone}.items():
                    results[name] = CheckResult(
                        name=name,
                        ok=False,
                        kind="swarm",
                        output=f"not converged after {time_limit:.0f}s: {message or 'pending'}",
                        attempts=attempts,
                        elapsed_seconds=self._clock.monotonic() - start,
                    )
                break
            await self._clock.sleep(self._poll)
        return results

    # ---------------------------------------------------------------- rollback

    async def restore(
        self, stack: str, previous: Mapping[str, JSONDict | None], *, time_limit: float
    ) -> None:
        """Put each service back to ``previous[name]`` (a Swarm spec; None = it did not exist)
        together, then wait until they converge. ``RollbackError`` if they do not."""
        since = self._clock.now()

        def work() -> None:
            api = self.client.api
            for name, spec in previous.items():
                full = f"{stack}_{name}"
                try:
                    live = api.inspect_service(full)
                except docker.errors.NotFound:
                    live = None
                if spec is None:
                    if live is not None:
                        api.remove_service(live["ID"])
                    continue
                parts: dict[str, Any] = {
                    "task_template": spec["TaskTemplate"],
                    "name": spec["Name"],
                    "labels": spec.get("Labels"),
                    "mode": spec.get("Mode"),
                    "update_config": spec.get("UpdateConfig"),
                    "rollback_config": spec.get("RollbackConfig"),
                    "endpoint_spec": spec.get("EndpointSpec"),
                }
                if live is None:
                    api.create_service(**parts)
                else:
                    api.update_service(live["ID"], live["Version"]["Index"], **parts)

        try:
            await self._call("rolling back", work)
        except DockerError as exc:
            if "unreachable" in exc.message:
                raise  # transient: the caller retries the whole rollback later
            raise RollbackError(f"rollback could not be started: {exc}") from exc
        restored = [n for n, s in previous.items() if s is not None]
        removed = [n for n, s in previous.items() if s is None]
        results = await self.wait_converged(
            stack, restored, since=since, time_limit=time_limit, expected_gone=removed
        )
        failed = [r for r in results.values() if not r.ok]
        if failed:
            raise RollbackError(
                "rollback did not converge: " + "; ".join(f"{r.name}: {r.output}" for r in failed)
            )

    # ---------------------------------------------------------------- probe containers

    async def remove_probes(self, stack: str) -> int:
        def work() -> int:
            found = self.client.containers.list(
                all=True, filters={"label": f"{PROBE_LABEL}={stack}"}
            )
            for container in found:
                container.remove(force=True)
            return len(found)

        return await self._call("removing probe containers", work)


class ProbeProxies:
    """Short-lived probe containers that carry HTTP checks into stack networks: one container
    per verify phase, on the default bridge with its port published on 127.0.0.1 only, attached
    to each network a check asks for. ``proxy_for(network)`` returns the proxy URL."""

    def __init__(
        self, swarm: SwarmAdapter, *, stack: str, image: str, labels: Mapping[str, str]
    ) -> None:
        self._swarm = swarm
        self._stack = stack
        self._image = image
        self._labels = dict(labels)
        self._container: Any = None
        self._url: str | None = None
        self._networks: set[str] = set()
        self._lock = asyncio.Lock()

    async def proxy_for(self, network: str) -> str:
        async with self._lock:
            if not self._image:
                raise DockerError(
                    "a health check probes through a stack network but health.probe_image is "
                    "not configured"
                )
            if self._container is None:
                await self._start()
            if network not in self._networks:
                await self._swarm._call(
                    f"attaching the probe to {network}",
                    lambda: self._swarm.client.networks.get(network).connect(self._container),
                )
                self._networks.add(network)
            assert self._url is not None
            return self._url

    async def _start(self) -> None:
        source = (Path(__file__).parent / "probe_proxy.py").read_text()
        client = self._swarm.client

        def work() -> Any:
            container = client.containers.run(
                self._image,
                ["python3", "-c", source],
                detach=True,
                name=f"{self._stack}-probe-{secrets.token_hex(4)}",
                labels={PROBE_LABEL: self._stack, **self._labels},
                ports={"8080/tcp": ("127.0.0.1", None)},
                network="bridge",
            )
            container.reload()
            return container

        self._container = await self._swarm._call("starting the probe container", work)
        port = self._container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        self._url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", int(port)), timeout=1):
                    return
            except OSError:
                await asyncio.sleep(0.1)
        raise DockerError("the probe container did not start listening")

    async def close(self) -> None:
        async with self._lock:
            if self._container is not None:
                container, self._container = self._container, None
                try:
                    await self._swarm._call(
                        "removing the probe", lambda: container.remove(force=True)
                    )
                except DockerError as exc:
                    logger.warning("could not remove the probe container: {}", exc)
            self._networks.clear()
            self._url = None
