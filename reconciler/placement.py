"""Whether a service's placement constraints can be met by any node of the Swarm, judged the way
Swarm judges them (swarmkit's constraint filter): ``<key> == <value>`` or ``!=``, the value
compared without regard to case; keys ``node.id``, ``node.hostname``, ``node.role``,
``node.platform.os``, ``node.platform.arch``, ``node.labels.<name>``, ``engine.labels.<name>``; a
label a node does not have is the empty value. Pre-flight refuses a revision whose constraints no
node meets (a typo in a label, a role no node has), naming the first constraint that leaves no
node. A constraint it cannot read is not judged (Swarm itself refuses it at the deploy). With
``max_replicas_per_node``, it also refuses more replicas than the nodes that meet the constraints
may hold (two nginx replicas, one per node, with one edge node): Swarm would leave the rest
pending, and the verify would wait for them in vain.

Every node counts, whatever its state: a node that is down or drained now can come back, and a
revision is not refused for the state of the Swarm. Only services that must run tasks are judged:
a global service no node meets runs none, and converges (that is how a stack leaves a
service off where its platform is missing, e.g. ``node.platform.os == none``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

_CONSTRAINT = re.compile(r"^\s*([\w.\-]+)\s*(==|!=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    role: str  # manager | worker
    labels: Mapping[str, str] = field(default_factory=dict)  # the node's (docker node update)
    engine_labels: Mapping[str, str] = field(default_factory=dict)  # the engine's (daemon.json)
    os: str = "linux"
    arch: str = "x86_64"
    state: str = "ready"  # ready | down | unknown | disconnected
    availability: str = "active"  # active | pause | drain


def _value(key: str, node: Node) -> str | None:
    """The node's value for a constraint's key; None: a key Swarm does not know."""
    fixed = {
        "node.id": node.id,
        "node.hostname": node.hostname,
        "node.role": node.role,
        "node.platform.os": node.os,
        "node.platform.arch": node.arch,
    }
    if key in fixed:
        return fixed[key]
    for prefix, labels in (("node.labels.", node.labels), ("engine.labels.", node.engine_labels)):
        if key.startswith(prefix) and len(key) > len(prefix):
            return labels.get(key[len(prefix) :], "")
    return None


def meets(constraint: str, node: Node) -> bool | None:
    """Whether ``node`` meets ``constraint``; None when the constraint cannot be read."""
    found = _CONSTRAINT.match(constraint)
    if found is None:
        return None
    key, operator, expected = found.groups()
    value = _value(key, node)
    if value is None:
        return None
    equal = value.casefold() == expected.casefold()
    return equal if operator == "==" else not equal


def must_run(mode: str, replicas: int | None) -> bool:
    """Whether a service must run at least one task somewhere (replicated, with replicas)."""
    return not mode.startswith("global") and (replicas is None or replicas > 0)


def constraints(placement: Sequence[str] | None) -> list[str]:
    """The constraints among a service's placement fields (not ``spread=``, ``max_replicas=``)."""
    return [p for p in placement or () if "==" in p or "!=" in p]


def per_node(placement: Sequence[str] | None) -> int | None:
    """The placement's ``max_replicas=N`` (``max_replicas_per_node``), or None."""
    for item in placement or ():
        key, _, value = item.partition("=")
        if key == "max_replicas" and value.isdigit() and int(value) > 0:
            return int(value)
    return None


def unplaceable(
    service: str,
    placement: Sequence[str] | None,
    nodes: Sequence[Node],
    replicas: int | None = None,
) -> str | None:
    """Why the Swarm's nodes cannot run ``service`` (its ``replicas``, if given), or None when
    they can (or there are no nodes to judge)."""
    if not nodes:
        return None
    named = constraints(placement)
    left = list(nodes)
    for constraint in named:
        kept = [n for n in left if meets(constraint, n) is not False]
        if not kept:
            if len(left) == len(nodes):
                return f"{service}: no node meets the placement constraint `{constraint}`"
            return (
                f"{service}: no node meets the placement constraints up to `{constraint}` "
                f"({', '.join(named)})"
            )
        left = kept
    most = per_node(placement)
    if most is not None and replicas is not None and replicas > most * len(left):
        where = "node" if len(left) == 1 else "nodes"
        meet = "meets" if len(left) == 1 else "meet"
        which = (
            f"{meet} its placement constraints ({', '.join(named)})" if named else "in the Swarm"
        )
        return (
            f"{service}: {replicas} replicas, at most {most} per node, but {len(left)} {where} "
            f"{which}"
        )
    return None
