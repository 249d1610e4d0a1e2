"""Stops the containers :func:`reconciler.port_holders.stale_port_holders` names (Docker SDK):
what Swarm's own shutdown of those tasks would do. Only this engine's containers can be reached;
one on another node is left to its node. Errors are the caller's to translate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import docker
import docker.errors
from loguru import logger

from reconciler.port_holders import stale_port_holders
from reconciler.types import JSONDict


def stop_port_holders(
    client: docker.DockerClient, service: str, tasks: Sequence[JSONDict], now: datetime
) -> list[str]:
    """The containers stopped (short IDs), for tasks of ``service`` told to stop long ago that
    still keep a new task from its host-mode port."""
    stopped = []
    for container_id in stale_port_holders(tasks, now):
        try:
            client.containers.get(container_id).stop(timeout=10)
        except docker.errors.NotFound:
            continue  # on another node, or gone meanwhile
        except docker.errors.APIError as exc:  # the watch goes on: Swarm may still do it
            logger.warning("{}: cannot stop {}: {}", service, container_id[:12], exc)
            continue
        stopped.append(container_id[:12])
    if stopped:
        logger.warning(
            "{}: stopped {} of tasks Swarm had told to stop, which kept the new task from its "
            "host-mode port (an engine restart's leftover)",
            service,
            ", ".join(stopped),
        )
    return stopped
