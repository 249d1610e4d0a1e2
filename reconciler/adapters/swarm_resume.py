"""Resuming a rollout that Swarm paused for a reason that is not the revision's: a task of the
update that Swarm stopped itself (its node drained, ``convergence.judge`` says ``resume``).

An update of the service with its own spec, unchanged, clears the pause: Swarm finishes the
rollout where it stopped, and restarts none of the tasks that run the new spec."""

from __future__ import annotations

from typing import Any

from loguru import logger

from reconciler.types import JSONDict


def resume_update(api: Any, service: JSONDict, why: str) -> None:
    """Update ``service`` (as read, at its version) with its spec as it is (the SDK's
    ``fetch_current_spec`` would add the engine's defaults to it: a different spec, which Swarm
    would roll out again)."""
    spec = service["Spec"]
    logger.warning("{}: {}", spec["Name"], why)
    api.update_service(
        service["ID"],
        version=service["Version"]["Index"],
        name=spec["Name"],
        labels=spec.get("Labels"),
        mode=spec["Mode"],
        task_template=spec["TaskTemplate"],
        update_config=spec.get("UpdateConfig"),
        rollback_config=spec.get("RollbackConfig"),
        endpoint_spec=spec.get("EndpointSpec"),
    )
