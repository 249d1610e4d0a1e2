"""The agent's state kept in the Swarm itself (``state.store: swarm``), so that an agent on any
manager can read it and finish what another started.

* **The lease object** is a service with no replicas, ``<stack>-agent-state``, outside the stack
  (``docker stack deploy --prune`` never touches it). Its labels hold the lease
  (:mod:`reconciler.lease`) and the names of the configs holding the status and the journal.
  Every write to it is an update at the version last read, which the Swarm refuses when anybody
  wrote since ("update out of sequence"): the compare-and-swap the lease and the fencing rest
  on. A write by an agent that no longer holds the lease fails with ``LeaseLost``.
* **The documents** (status, journal) are Swarm configs named after their content,
  ``<stack>-agent-status-<hash>``: created first, then named in the lease object by one
  compare-and-swap (the commit), then the one it replaces is removed. A write that loses the
  race removes what it created. Configs are replicated by the managers' Raft log like the
  services, so the state is exactly as available as the Swarm that the agent changes.

Blocking SDK calls: short requests to the local engine's socket, made where the file store
would fsync (the store's interface is synchronous); the lease's renewal runs them in a thread.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions

from reconciler.adapters.sdk_errors import sdk_fault
from reconciler.errors import DockerError, LeaseLost
from reconciler.faults import Component, docker_error
from reconciler.lease import Lease
from reconciler.types import JSONDict

T = TypeVar("T")

STATE_LABEL = "io.driftless.state"  # on the lease object and the configs: the stack's name
LEASE_LABEL = "io.driftless.state.lease"
DOC_LABEL = "io.driftless.state.{kind}"  # the config holding the document: status, journal
KINDS = ("status", "journal")
#: the image named by the lease object; with no replicas no task runs and nothing is pulled
PLACEHOLDER_IMAGE = "driftless/agent-state:none"
_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


@dataclass(frozen=True)
class Reading:
    """The lease object as read: the lease in it, its version, the documents' config names."""

    lease: Lease | None
    version: int
    documents: dict[str, str]


class SwarmState:
    """The lease object and the documents of one stack. Thread-safe."""

    def __init__(self, client: docker.DockerClient, stack: str) -> None:
        self._api = client.api
        self.stack = stack
        self.name = f"{stack}-agent-state"
        self._lock = threading.RLock()
        #: the object's version after this agent's last write, while it holds the lease
        self._held: int | None = None
        self._spec: JSONDict = {}

    # ---------------------------------------------------------------- reading

    def read(self) -> Reading:
        """The lease object (created, with no lease in it, when it does not exist yet)."""
        with self._lock:
            found = self._call("reading the agent's state", self._inspect)
            if found is None:
                self._call("creating the agent's state", self._create)
                found = self._call("reading the agent's state", self._inspect)
                if found is None:
                    raise DockerError(f"the Swarm did not keep service {self.name}")
            return self._reading(found)

    def peek(self) -> Reading | None:
        """The lease object as it is, or None when there is none (nothing is created: for
        readers such as ``reconciler status``)."""
        with self._lock:
            found = self._call("reading the agent's state", self._inspect)
            return None if found is None else self._reading(found)

    def document(self, kind: str) -> str | None:
        """The status or the journal as the object names it now (None: there is none)."""
        with self._lock:
            reading = self.peek()
            name = reading.documents.get(kind) if reading else None
            if not name:
                return None
            return self._call(f"reading the agent's {kind}", lambda: self._config_text(name))

    # ---------------------------------------------------------------- the lease

    def swap(self, version: int, lease: Lease) -> bool:
        """Write ``lease`` if the object is still at ``version``; False when another agent
        wrote since (it is then not held)."""
        with self._lock:
            found = self._found_at(version, "reading the agent's state")
            if found is None:
                return False
            labels = dict(found["Spec"].get("Labels") or {})
            labels[LEASE_LABEL] = lease.to_json()
            ok = self._update(found["Spec"], version, labels)
            self._held = self._version_after(lease) if ok else None
            return self._held is not None

    def forget(self) -> None:
        """This agent no longer holds the lease (it expired on its own clock)."""
        with self._lock:
            self._held = None

    # ---------------------------------------------------------------- documents (fenced)

    def put(self, kind: str, text: str | None, *, keep_old: bool = False) -> None:
        """Make ``text`` the stack's ``kind`` document (None: none). ``LeaseLost`` when this
        agent does not hold the lease, or another agent wrote since its last write.
        ``keep_old``: the config replaced stays (a damaged document kept for a human)."""
        with self._lock:
            if self._held is None:
                raise LeaseLost(f"not saving the {kind}: this agent does not hold the lease")
            doing = f"saving the agent's {kind}"
            spec, version = self._spec, self._held
            labels = dict(spec.get("Labels") or {})
            old = labels.get(DOC_LABEL.format(kind=kind), "")
            new = ""
            if text is not None:
                new = f"{self.stack}-agent-{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
                if new == old:  # nothing to write; still refused once another agent wrote
                    if self._found_at(version, doing) is None:
                        raise LeaseLost(f"not saving the {kind}: another agent wrote the state")
                    return
                self._call(doing, lambda: self._create_config(new, kind, text))
            labels[DOC_LABEL.format(kind=kind)] = new
            lease = Lease.from_json(labels[LEASE_LABEL])
            ok = self._update(spec, version, labels)
            self._held = self._version_after(lease) if ok else None
            if self._held is None:
                if new:
                    self._remove_config(new)
                raise LeaseLost(f"not saving the {kind}: another agent wrote the state")
            if old and not keep_old:
                self._remove_config(old)

    # ---------------------------------------------------------------- plumbing

    def _call(self, doing: str, func: Callable[[], T]) -> T:
        try:
            return func()
        except _ERRORS as exc:
            raise self._error(doing, exc) from exc

    @staticmethod
    def _error(doing: str, exc: BaseException) -> DockerError:
        """The engine's error as the reconciler's, read like every other engine error
        (``faults``) but always the engine's (retried: the state is the Swarm's, never the
        revision's fault): "reading the agent's state: Docker engine unreachable: the swarm does
        not have a leader"."""
        text, fault = sdk_fault(exc)
        return docker_error(doing, text, replace(fault, component=Component.ENGINE))

    def _found_at(self, version: int, doing: str) -> JSONDict | None:
        """The object when it is still at ``version``; None (and no longer held) when another
        agent wrote since, or it is gone."""
        found = self._call(doing, self._inspect)
        if found is None or int(found["Version"]["Index"]) != version:
            self._held = None
            return None
        return found

    def _inspect(self) -> JSONDict | None:
        try:
            found: JSONDict = self._api.inspect_service(self.name)
        except docker.errors.NotFound:
            return None
        return found

    def _create(self) -> None:
        try:
            self._api.create_service(
                {"ContainerSpec": {"Image": PLACEHOLDER_IMAGE}},
                name=self.name,
                labels={STATE_LABEL: self.stack},
                mode={"Replicated": {"Replicas": 0}},
            )
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # another agent created it first: fine
                raise

    def _reading(self, found: JSONDict) -> Reading:
        labels: dict[str, str] = found["Spec"].get("Labels") or {}
        lease = None
        if labels.get(LEASE_LABEL):
            try:
                lease = Lease.from_json(labels[LEASE_LABEL])
            except ValueError:
                lease = None  # damaged by hand: free to take (the next write repairs it)
        docs = {k: labels.get(DOC_LABEL.format(kind=k), "") for k in KINDS}
        return Reading(lease, int(found["Version"]["Index"]), docs)

    def _update(self, spec: JSONDict, version: int, labels: dict[str, str]) -> bool:
        """The compare-and-swap: False when the object is no longer at ``version``."""
        try:
            self._api.update_service(
                self.name,
                version,
                task_template=spec["TaskTemplate"],
                name=self.name,
                labels=labels,
                mode=spec.get("Mode") or {"Replicated": {"Replicas": 0}},
            )
        except docker.errors.APIError as exc:
            if "out of sequence" in str(exc.explanation or exc):
                return False
            raise self._error("writing the agent's state", exc) from exc
        return True

    def _version_after(self, lease: Lease) -> int | None:
        """The object's version after this agent's write, when the lease in it is still this
        agent's; keeps the spec for the next write."""
        found = self._call("reading the agent's state", self._inspect)
        if found is None:
            return None
        reading = self._reading(found)
        mine = reading.lease is not None and (reading.lease.holder, reading.lease.term) == (
            lease.holder,
            lease.term,
        )
        if not mine:
            return None
        self._spec = found["Spec"]
        return reading.version

    def _create_config(self, name: str, kind: str, text: str) -> None:
        try:
            self._api.create_config(name, text.encode(), labels={STATE_LABEL: self.stack})
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # the same content saved before: the same config
                raise

    def _config_text(self, name: str) -> str:
        data: Any = self._api.inspect_config(name)["Spec"]["Data"]
        return base64.b64decode(data).decode()

    def _remove_config(self, name: str) -> None:
        with contextlib.suppress(*_ERRORS):  # left for prune(): a config no object names
            self._api.remove_config(name)

    def prune(self) -> int:
        """Remove this stack's state configs that the lease object does not name (left by a
        write that lost its race, or an agent killed between two steps). Holder only."""
        with self._lock:
            named = set(self.read().documents.values())
            found = self._call(
                "listing the agent's state",
                lambda: self._api.configs(filters={"label": f"{STATE_LABEL}={self.stack}"}),
            )
            removed = 0
            for config in found:
                name = config["Spec"]["Name"]
                if name not in named:
                    self._remove_config(name)
                    removed += 1
            return removed
