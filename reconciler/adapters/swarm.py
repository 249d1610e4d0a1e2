"""Docker Swarm through the Docker SDK (read, diff, watch, roll back) and the docker CLI (only
``docker stack deploy`` and ``docker stack config``: compose files mean what Docker says).

Every Docker error is translated here, through ``reconciler.faults``: the engine's or a
registry's trouble is a ``DockerError`` named after the component (``DockerUnavailable``,
``RegistryUnavailable``: retry later), a failed deploy an ``ApplyError``, a spec the engine
refuses in a rollback or a rollback that does not converge a ``RollbackError``. The engine's own
(masked) words are the error's ``detail``. Blocking SDK calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
from loguru import logger

from reconciler.adapters.port_holders import stop_port_holders
from reconciler.adapters.sdk_errors import sdk_fault
from reconciler.adapters.stack_cli import StackCli
from reconciler.adapters.swarm_objects import missing_objects, read_nodes
from reconciler.adapters.swarm_resume import resume_update
from reconciler.adapters.swarm_secrets import STACK_LABEL, create_secrets, prune_secrets
from reconciler.convergence import Progress, judge, settled, timed_out
from reconciler.errors import (
    ApplyError,
    DockerError,
    PreflightError,
    ReconcilerError,
    RollbackError,
    WaitingError,
)
from reconciler.faults import Component, docker_error, docker_fault
from reconciler.fields import fields_from_swarm
from reconciler.imageref import parse_image
from reconciler.masking import Masker
from reconciler.models import CheckResult, LiveService, LiveState
from reconciler.placement import Node
from reconciler.ports import Clock
from reconciler.sopsfiles import SealedSecret
from reconciler.task_views import ServiceTasks, service_tasks
from reconciler.types import JSONDict

T = TypeVar("T")
PROBE_LABEL = "driftless.probe"
_CONNECTION_ERRORS = (requests.exceptions.ConnectionError, ConnectionError, OSError)


def _docker_error(
    exc: BaseException, what: str, masker: Masker, *, about_spec: bool = False
) -> ReconcilerError:
    """An SDK error as the reconciler's: the engine not answering, or what its answer means.
    ``about_spec``: the request carried a service spec, so an answer that blames it is an
    ``ApplyError`` (not retried); any other request the engine refuses is the engine's."""
    text, fault = sdk_fault(exc, masker)
    if fault.component is Component.REVISION:
        if about_spec:
            return ApplyError(
                f"{what}: the Docker engine refused it: {fault.evidence}", detail=text
            )
        fault = replace(fault, component=Component.ENGINE)
    return docker_error(what, text, fault)


def _registry(image: str) -> str:
    try:
        return parse_image(image).registry
    except ValueError:
        return ""


def _networks_gone(api: Any, spec: JSONDict) -> bool:
    """Whether a network the spec is attached to no longer exists (``docker stack rm``)."""
    for attachment in (spec.get("TaskTemplate") or {}).get("Networks") or []:
        try:
            api.inspect_network(attachment.get("Target"))
        except docker.errors.NotFound:
            return True
    return False


def _restore(api: Any, full: str, spec: JSONDict | None) -> bool:
    """Put one service back to ``spec`` (None: remove it); False when it cannot be re-created
    because the networks it was on were removed with its stack (by hand)."""
    try:
        live = api.inspect_service(full)
    except docker.errors.NotFound:
        live = None
    if spec is None:
        if live is not None:
            api.remove_service(live["ID"])
        return True
    parts: dict[str, Any] = {
        "task_template": spec["TaskTemplate"],
        "name": spec["Name"],
        "labels": spec.get("Labels"),
        "mode": spec.get("Mode"),
        "update_config": spec.get("UpdateConfig"),
        "rollback_config": spec.get("RollbackConfig"),
        "endpoint_spec": spec.get("EndpointSpec"),
    }
    gone = _networks_gone(api, spec)
    if live is not None:
        if gone:  # its stack was removed and deployed again: stay on the networks it is on now
            template = live["Spec"]["TaskTemplate"]
            parts["task_template"] = {**spec["TaskTemplate"], "Networks": template.get("Networks")}
        api.update_service(live["ID"], live["Version"]["Index"], **parts)
    elif gone:
        return False
    else:
        api.create_service(**parts)
    return True


class SwarmAdapter(StackCli):
    def __init__(
        self,
        *,
        clock: Clock,
        masker: Masker,
        cli: str = "docker",
        host: str = "",
        poll_interval: float = 0.25,
        images_checked: bool = False,
    ) -> None:
        self._clock = clock
        self._masker = masker
        self._cli = cli
        self._host = host
        self._poll = poll_interval
        self._images_checked = images_checked  # pre-flight checks every image before a deploy
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

    async def _call(self, what: str, func: Callable[[], T], *, about_spec: bool = False) -> T:
        try:
            return await asyncio.to_thread(func)
        except docker.errors.DockerException as exc:
            raise _docker_error(exc, what, self._masker, about_spec=about_spec) from exc
        except _CONNECTION_ERRORS as exc:
            raise _docker_error(exc, what, self._masker) from exc

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
            network_names = {n["Id"]: n["Name"] for n in api.networks()}
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
                fields = fields_from_swarm(spec, network_names)
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
                        previous_spec=svc.get("PreviousSpec"),
                        previous_revision=((svc.get("PreviousSpec") or {}).get("Labels") or {}).get(
                            "driftless.revision"
                        ),
                    )
                )
            return LiveState(stack=stack, services=tuple(sorted(out, key=lambda s: s.name)))

        return await self._call("reading the live services", work)

    async def image_digest(self, image: str) -> str | None:
        """The digest the image's registry gives for it now (the engine's distribution inspect),
        None when it has no such image. A registry that refuses access is a ``PreflightError``
        (private registries answer the same for "missing" and "not yours to read"); one down or
        failing a ``DockerError`` with ``RegistryUnavailable``."""

        def work() -> str | None:
            try:
                found = self.client.api.inspect_distribution(image)
            except docker.errors.NotFound:
                return None
            except docker.errors.APIError as exc:
                text = self._masker.mask(str(exc.explanation or exc))
                fault = docker_fault(text, status=exc.status_code, registry=_registry(image))
                refused = exc.status_code in (401, 403)
                if fault.component is Component.REVISION and not refused:
                    return None
                if fault.reason is None or refused:
                    raise PreflightError(
                        f"image {image}: the registry refused access ({fault.evidence}); "
                        "check that it exists and that the agent is logged in to its registry "
                        "(docker login with the agent's DOCKER_CONFIG)",
                        detail=text,
                    ) from exc
                raise docker_error(f"checking image {image}", text, fault) from exc
            return str((found.get("Descriptor") or {}).get("digest") or "") or None

        return await self._call(f"checking image {image}", work)

    async def missing_objects(
        self, secrets_: Sequence[str], configs: Sequence[str], networks: Sequence[str]
    ) -> list[str]:
        work = functools.partial(missing_objects, self.client.api, secrets_, configs, networks)
        return await self._call("checking secrets, configs and networks", work)

    async def nodes(self) -> list[Node]:
        return await self._call("listing the Swarm's nodes", lambda: read_nodes(self.client.api))

    async def create_secrets(self, stack: str, secrets: Sequence[SealedSecret]) -> list[str]:
        what = "creating the SOPS secrets"
        work = functools.partial(create_secrets, lambda: self.client.api, stack, secrets)
        return await self._call(what, work, about_spec=True)

    async def prune_secrets(self, stack: str, keep: Collection[str]) -> list[str]:
        work = functools.partial(prune_secrets, lambda: self.client.api, stack, keep)
        return await self._call("removing unused SOPS secrets", work)

    # ---------------------------------------------------------------- watching

    def _progress(self, stack: str, name: str, since: datetime, rollback: bool) -> Progress:
        """Where the rollout of one service stands, now (``convergence.judge``)."""
        api = self.client.api
        try:
            service = api.inspect_service(f"{stack}_{name}")
        except docker.errors.NotFound:
            return judge(None, (), since, self._clock.now())
        tasks = api.tasks(filters={"service": service["ID"]})
        stop_port_holders(self.client, name, tasks, self._clock.now())  # an engine race
        progress = judge(
            service,
            tasks,
            since,
            self._clock.now(),
            rollback=rollback,
            image_checked=self._images_checked and not rollback,
        )
        if progress.resume:
            resume_update(api, service, progress.message)
        return progress

    async def wait_converged(
        self,
        stack: str,
        services: Sequence[str],
        *,
        since: datetime,
        time_limit: float,
        expected_gone: Sequence[str] = (),
        rollback: bool = False,
    ) -> dict[str, CheckResult]:
        """Poll until every service runs its current spec healthy (or is gone, for removed
        ones), fails, or ``time_limit`` passes. One ``CheckResult`` (kind ``swarm``) each.
        ``rollback``: the specs from before the pass, watched for the rollback's monitor window."""
        start = self._clock.monotonic()
        waiting = {**dict.fromkeys(services, False), **dict.fromkeys(expected_gone, True)}
        last: dict[str, str] = {}
        troubled: set[str] = set()  # met the engine's own trouble while waiting
        results: dict[str, CheckResult] = {}
        attempts = 0
        while waiting:
            attempts += 1
            for name, removed in list(waiting.items()):
                progress = await self._call(
                    f"watching {name}",
                    functools.partial(self._progress, stack, name, since, rollback),
                )
                elapsed = self._clock.monotonic() - start
                result = settled(
                    name, progress, removed=removed, attempts=attempts, elapsed=elapsed
                )
                if progress.engine:
                    troubled.add(name)
                if result is None:
                    if not removed:
                        last[name] = progress.message
                else:
                    results[name] = result
                    del waiting[name]
            elapsed = self._clock.monotonic() - start
            if waiting and elapsed >= time_limit:
                for name in waiting:
                    results[name] = timed_out(
                        name,
                        last.get(name, ""),
                        time_limit,
                        attempts,
                        elapsed,
                        engine=name in troubled,
                    )
                break
            if waiting:
                await self._clock.sleep(self._poll)
        return results

    async def tasks(self, stack: str, service: str) -> ServiceTasks:
        def work() -> ServiceTasks:
            api = self.client.api
            try:
                svc = api.inspect_service(f"{stack}_{service}")
            except docker.errors.NotFound:
                return service_tasks(None, ())
            return service_tasks(svc, api.tasks(filters={"service": svc["ID"]}))

        return await self._call(f"reading the tasks of {service}", work)

    # ---------------------------------------------------------------- rollback

    async def restore(
        self, stack: str, previous: Mapping[str, JSONDict | None], *, time_limit: float
    ) -> None:
        """Put each service back to ``previous[name]`` (a Swarm spec; None = it did not exist)
        together, then wait until they converge. ``RollbackError`` if they do not."""
        since = self._clock.now()

        def work() -> list[str]:
            api = self.client.api
            return [n for n, spec in previous.items() if not _restore(api, f"{stack}_{n}", spec)]

        try:
            skipped = await self._call("rolling back", work, about_spec=True)
        except WaitingError:
            raise  # the engine's trouble: the caller retries the whole rollback later
        except ReconcilerError as exc:
            raise RollbackError(f"rollback could not be started: {exc}", detail=exc.detail) from exc
        if skipped:
            logger.warning(
                "not re-created by the rollback: {} (removed by hand with the networks it was "
                "on; the next pass deploys the stack again)",
                ", ".join(skipped),
            )
        restored = [n for n, s in previous.items() if s is not None and n not in skipped]
        removed = [n for n, s in previous.items() if s is None]
        results = await self.wait_converged(
            stack,
            restored,
            since=since,
            time_limit=time_limit,
            expected_gone=removed,
            rollback=True,
        )
        failed = [r for r in results.values() if not r.ok]
        if failed:
            raise RollbackError(
                "rollback did not converge: " + "; ".join(f"{r.name}: {r.output}" for r in failed)
            )
