"""The Swarm secrets the agent makes from SOPS files, through the Docker SDK (blocking calls: the
Swarm adapter runs them in a worker thread and translates their errors).

Each is created before the deploy that first uses it, labelled as the stack's
(``com.docker.stack.namespace``, so ``docker stack rm`` removes it with the stack) and with
``driftless.sops=<key>``; after a successful pass the stack's ``driftless.sops`` secrets that no
service uses any more are removed (never during a rollback, which needs the old ones).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import docker.errors

from reconciler.sopsfiles import SOPS_LABEL, SealedSecret

STACK_LABEL = "com.docker.stack.namespace"


def create_secrets(
    engine: Callable[[], Any], stack: str, secrets: Sequence[SealedSecret]
) -> list[str]:
    """Create the secrets that do not exist yet; the names created. ``engine``: the SDK's
    low-level API client (called in the worker thread: making it may reach the engine)."""
    api = engine()
    existing = {s["Spec"]["Name"] for s in api.secrets(filters={"label": SOPS_LABEL})}
    created: list[str] = []
    for secret in secrets:
        if secret.name in existing:
            continue
        labels = {STACK_LABEL: stack, SOPS_LABEL: secret.key}
        try:
            api.create_secret(secret.name, secret.value, labels=labels)
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # it exists (made meanwhile, or without our labels)
                continue
            raise
        created.append(secret.name)
    return created


def _used(api: Any, stack: str) -> set[str]:
    """The secrets the stack's services use now."""
    used: set[str] = set()
    for service in api.services(filters={"label": f"{STACK_LABEL}={stack}"}):
        template = service["Spec"].get("TaskTemplate") or {}
        for ref in (template.get("ContainerSpec") or {}).get("Secrets") or []:
            used.add(str(ref.get("SecretName")))
    return used


def prune_secrets(engine: Callable[[], Any], stack: str, keep: Collection[str]) -> list[str]:
    """Remove the stack's ``driftless.sops`` secrets not in ``keep`` and not in use; the names
    removed. One Docker still counts as in use (a service of another stack) is left."""
    api = engine()
    used = _used(api, stack)
    removed: list[str] = []
    for secret in api.secrets(filters={"label": [f"{STACK_LABEL}={stack}", SOPS_LABEL]}):
        name = str(secret["Spec"]["Name"])
        if name in keep or name in used:
            continue
        try:
            api.remove_secret(secret["ID"])
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            if "in use" in str(exc.explanation or exc):
                continue
            raise
        removed.append(name)
    return removed
