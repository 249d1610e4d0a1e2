"""What pre-flight asks the Swarm besides the services: whether external secrets, configs and
networks exist, and which nodes there are (for the placement check, ``reconciler.placement``).
Blocking SDK calls, run by ``SwarmAdapter`` in a thread."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.placement import Node


def missing_objects(
    api: Any, secrets: Sequence[str], configs: Sequence[str], networks: Sequence[str]
) -> list[str]:
    missing = []
    for name in secrets:
        if not any(s["Spec"]["Name"] == name for s in api.secrets(filters={"name": name})):
            missing.append(f"secret {name}")
    for name in configs:
        if not any(c["Spec"]["Name"] == name for c in api.configs(filters={"name": name})):
            missing.append(f"config {name}")
    for name in networks:
        if not any(n["Name"] == name for n in api.networks(names=[name])):
            missing.append(f"network {name}")
    return missing


def read_nodes(api: Any) -> list[Node]:
    nodes = []
    for found in api.nodes():
        spec, description = found.get("Spec") or {}, found.get("Description") or {}
        platform = description.get("Platform") or {}
        nodes.append(
            Node(
                id=found["ID"],
                hostname=description.get("Hostname", ""),
                role=spec.get("Role", ""),
                labels=dict(spec.get("Labels") or {}),
                engine_labels=dict((description.get("Engine") or {}).get("Labels") or {}),
                os=platform.get("OS", ""),
                arch=platform.get("Architecture", ""),
                state=(found.get("Status") or {}).get("State", ""),
                availability=spec.get("Availability", ""),
            )
        )
    return nodes
