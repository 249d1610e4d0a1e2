"""What a service is attached to and placed by — networks, secrets, configs, mounts, placement and
its healthcheck — read the same way from a compose service and from a live Swarm spec (pure), so
that a change made by hand (``docker service update --network-add``, ``--secret-rm``,
``--mount-add``, ``--constraint-add``, ``--health-cmd``) is a named difference.

Each is Swarm's view: names as ``docker stack deploy`` gives them (``<stack>_<key>`` unless the
stack file names them or they are external), durations in Swarm's units. A compose side read
without the stack's names (:class:`Names`) leaves them ``None``: not compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.types import JSONDict
from reconciler.units import format_duration_ns, parse_duration_ns

#: a bind mount whose source is relative to the stack file: the CLI resolves it, we cannot
ANY_SOURCE = "*"


@dataclass(frozen=True)
class Names:
    """The stack's top-level objects: compose key → Swarm name."""

    stack: str
    networks: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    configs: Mapping[str, str] = field(default_factory=dict)
    volumes: Mapping[str, str] = field(default_factory=dict)


def volume_names(doc: JSONDict, stack: str) -> dict[str, str]:
    """Top-level named volumes: key → the name Swarm mounts (``<stack>_<key>`` unless external
    or named)."""
    section = doc.get("volumes") or {}
    names: dict[str, str] = {}
    for key, entry in section.items() if isinstance(section, dict) else ():
        entry = entry if isinstance(entry, dict) else {}
        default = key if entry.get("external") else f"{stack}_{key}"
        names[str(key)] = str(entry.get("name") or default)
    return names


@dataclass(frozen=True)
class Attached:
    networks: tuple[str, ...] | None = None
    secrets: tuple[str, ...] | None = None
    configs: tuple[str, ...] | None = None
    mounts: tuple[str, ...] | None = None
    placement: tuple[str, ...] | None = None
    healthcheck: str | None = None


# ------------------------------------------------------------------ compose


def _networks(service: JSONDict, names: Names) -> tuple[str, ...]:
    raw = service.get("networks")
    keys = list(raw) if isinstance(raw, dict | list) and raw else ["default"]
    known = {"default": f"{names.stack}_default", **names.networks}
    return tuple(sorted({known[str(k)] for k in keys if str(k) in known}))


def _objects(service: JSONDict, kind: str, known: Mapping[str, str]) -> tuple[str, ...]:
    refs = service.get(kind) or []
    sources = [ref.get("source") if isinstance(ref, dict) else ref for ref in refs]
    return tuple(sorted(known.get(str(s), str(s)) for s in sources))


def _mount(source: str, target: str, kind: str, read_only: bool, names: Names) -> str:
    if kind == "volume" and source:
        source = names.volumes.get(source, f"{names.stack}_{source}")
    elif kind == "bind" and not source.startswith("/"):
        source = ANY_SOURCE
    return f"{kind} {source or '-'} {target} {'ro' if read_only else 'rw'}"


def _short_mount(text: str, names: Names) -> str:
    parts = text.split(":")
    if len(parts) == 1:  # an anonymous volume
        return _mount("", parts[0], "volume", False, names)
    source, target = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) > 2 else []
    kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
    return _mount(source, target, kind, "ro" in options, names)


def _mounts(service: JSONDict, names: Names) -> tuple[str, ...]:
    out = []
    for item in service.get("volumes") or []:
        if isinstance(item, Mapping):
            kind = str(item.get("type", "volume"))
            read_only = bool(item.get("read_only", False))
            source = str(item.get("source") or "")
            out.append(_mount(source, str(item["target"]), kind, read_only, names))
        else:
            out.append(_short_mount(str(item), names))
    return tuple(sorted(out))


def _placement(service: JSONDict) -> tuple[str, ...]:
    placement = (service.get("deploy") or {}).get("placement") or {}
    out = [str(c).strip() for c in placement.get("constraints") or []]
    out += [f"spread={p['spread']}" for p in placement.get("preferences") or [] if "spread" in p]
    if placement.get("max_replicas_per_node"):
        out.append(f"max_replicas={int(placement['max_replicas_per_node'])}")
    return tuple(sorted(out))


def _health_text(test: list[str], durations: Mapping[str, int], retries: int) -> str:
    parts = [f"test={' '.join(test)}"]
    parts += [f"{k}={format_duration_ns(v)}" for k, v in sorted(durations.items()) if v]
    if retries:
        parts.append(f"retries={retries}")
    return "; ".join(parts)


_HEALTH_DURATIONS = {
    # compose key: Swarm key
    "interval": "Interval",
    "timeout": "Timeout",
    "start_period": "StartPeriod",
    "start_interval": "StartInterval",
}


def _compose_health(service: JSONDict) -> str:
    raw = service.get("healthcheck")
    if not isinstance(raw, Mapping):
        return ""
    if raw.get("disable"):
        return _health_text(["NONE"], {}, 0)
    test = raw.get("test")
    if isinstance(test, str):
        argv = ["CMD-SHELL", test]
    elif isinstance(test, list):
        argv = [str(t) for t in test]
    else:
        argv = []
    durations = {k: parse_duration_ns(raw[k]) for k in _HEALTH_DURATIONS if raw.get(k) is not None}
    return _health_text(argv, durations, int(raw.get("retries") or 0))


def from_compose(service: JSONDict, names: Names | None) -> Attached:
    health = _compose_health(service)
    if names is None:
        return Attached(healthcheck=health, placement=_placement(service))
    return Attached(
        networks=_networks(service, names),
        secrets=_objects(service, "secrets", names.secrets),
        configs=_objects(service, "configs", names.configs),
        mounts=_mounts(service, names),
        placement=_placement(service),
        healthcheck=health,
    )


# ------------------------------------------------------------------ Swarm


def _swarm_health(container: JSONDict) -> str:
    raw = container.get("Healthcheck")
    if not isinstance(raw, Mapping) or not raw.get("Test"):
        return ""
    durations = {k: int(raw.get(swarm) or 0) for k, swarm in _HEALTH_DURATIONS.items()}
    return _health_text([str(t) for t in raw["Test"]], durations, int(raw.get("Retries") or 0))


def _swarm_placement(task: JSONDict) -> tuple[str, ...]:
    placement = task.get("Placement") or {}
    out = [str(c).strip() for c in placement.get("Constraints") or []]
    for pref in placement.get("Preferences") or []:
        spread = (pref.get("Spread") or {}).get("SpreadDescriptor")
        if spread:
            out.append(f"spread={spread}")
    if placement.get("MaxReplicas"):
        out.append(f"max_replicas={int(placement['MaxReplicas'])}")
    return tuple(sorted(out))


def from_swarm(spec: JSONDict, network_names: Mapping[str, str] | None) -> Attached:
    """``network_names``: network ID → name (the spec names its networks by ID)."""
    task = spec.get("TaskTemplate") or {}
    container = task.get("ContainerSpec") or {}
    networks = None
    if network_names is not None:
        targets = [str(n.get("Target", "")) for n in task.get("Networks") or []]
        networks = tuple(sorted(network_names.get(t, t) for t in targets))
    mounts = tuple(
        sorted(
            f"{m.get('Type', 'volume')} {m.get('Source') or '-'} {m.get('Target')} "
            f"{'ro' if m.get('ReadOnly') else 'rw'}"
            for m in container.get("Mounts") or []
        )
    )
    return Attached(
        networks=networks,
        secrets=tuple(sorted(str(s.get("SecretName")) for s in container.get("Secrets") or [])),
        configs=tuple(sorted(str(c.get("ConfigName")) for c in container.get("Configs") or [])),
        mounts=mounts,
        placement=_swarm_placement(task),
        healthcheck=_swarm_health(container),
    )


# ------------------------------------------------------------------ comparing


def _mount_matches(want: str, have: str) -> bool:
    w, h = want.split(" "), have.split(" ")
    return len(w) == len(h) == 4 and all(a in (b, ANY_SOURCE) for a, b in zip(w, h, strict=True))


def same_mounts(want: tuple[str, ...], have: tuple[str, ...]) -> bool:
    """Each desired mount matches one live mount, and there are no others (a relative bind
    source matches any source)."""
    left = list(have)
    for mount in want:
        match = next((m for m in left if _mount_matches(mount, m)), None)
        if match is None:
            return False
        left.remove(match)
    return not left
