"""The comparable view of a service (``ServiceFields``), read from a compose service definition
or from a live Swarm spec, and the field-level diff between the two (pure).

Both sides are brought to the unit Swarm stores (nanoseconds, bytes, NanoCPUs), so that what
``docker stack deploy`` made from the compose file compares equal to it, and a manual change
(``docker service scale``, ``--env-add``) shows up as a named field.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from reconciler.attached import Attached, Names, from_compose, from_swarm, same_mounts
from reconciler.imageref import display_image, same_image
from reconciler.models import FieldDiff, PortSpec, ServiceFields
from reconciler.types import JSONDict
from reconciler.units import format_duration_ns, parse_bytes, parse_duration_ns, parse_nano_cpus

#: labels the reconciler stamps on each service; never part of a comparison
STAMP_LABELS = ("driftless.spec-hash", "driftless.revision")
_IGNORED_LABEL_PREFIXES = ("com.docker.",)

_UPDATE_KEYS = {
    # compose key: (Swarm key, kind)
    "parallelism": ("Parallelism", "int"),
    "delay": ("Delay", "duration"),
    "failure_action": ("FailureAction", "str"),
    "monitor": ("Monitor", "duration"),
    "max_failure_ratio": ("MaxFailureRatio", "float"),
    "order": ("Order", "str"),
}
_RESOURCE_KEYS = {
    # compose key: (Swarm key, parser)
    "cpus": "NanoCPUs",
    "memory": "MemoryBytes",
    "pids": "Pids",
}


# ------------------------------------------------------------------ compose → fields


def _str_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compose_env(raw: Any) -> dict[str, str]:
    """``environment:`` as a list (``K=V``) or a mapping → dict. Entries without a value are
    dropped (docker would read them from the deploying shell; renders here are reproducible)."""
    env: dict[str, str] = {}
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if value is not None:
                env[str(key)] = _str_value(value)
    elif isinstance(raw, list):
        for item in raw:
            key, sep, value = str(item).partition("=")
            if sep:
                env[key] = value
    return env


def compose_labels(raw: Any) -> dict[str, str]:
    labels: dict[str, str] = {}
    if isinstance(raw, Mapping):
        labels = {str(k): "" if v is None else _str_value(v) for k, v in raw.items()}
    elif isinstance(raw, list):
        for item in raw:
            key, _, value = str(item).partition("=")
            labels[key] = value
    return _comparable_labels(labels)


def _comparable_labels(labels: Mapping[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in labels.items()
        if k not in STAMP_LABELS and not k.startswith(_IGNORED_LABEL_PREFIXES)
    }


def _port_range(text: str) -> list[int]:
    start, sep, end = text.partition("-")
    if not sep:
        return [int(start)]
    return list(range(int(start), int(end) + 1))


def compose_ports(raw: Any) -> tuple[PortSpec, ...]:
    ports: list[PortSpec] = []
    for item in raw or []:
        if isinstance(item, Mapping):
            published = item.get("published")
            ports.append(
                PortSpec(
                    target=int(item["target"]),
                    published=None if published in (None, "") else int(published),
                    protocol=str(item.get("protocol", "tcp")),
                    mode=str(item.get("mode", "ingress")),
                )
            )
            continue
        text = str(item)
        spec, _, protocol = text.partition("/")
        parts = spec.split(":")
        if len(parts) == 1:
            for target in _port_range(parts[0]):
                ports.append(PortSpec(target, None, protocol or "tcp"))
        else:
            for pub, tgt in zip(_port_range(parts[-2]), _port_range(parts[-1]), strict=True):
                ports.append(PortSpec(tgt, pub, protocol or "tcp"))
    return tuple(sorted(ports, key=lambda p: (p.target, p.protocol, p.published or 0, p.mode)))


def _compose_update(raw: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (raw or {}).items():
        if key not in _UPDATE_KEYS or value is None:
            continue
        kind = _UPDATE_KEYS[key][1]
        out[key] = _normalize(kind, value)
    return out


def _normalize(kind: str, value: Any) -> str:
    if kind == "duration":
        return format_duration_ns(parse_duration_ns(value))
    if kind == "float":
        return repr(float(value))
    if kind == "int":
        return str(int(value))
    return str(value)


def _compose_resources(raw: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for section in ("limits", "reservations"):
        for key, value in ((raw or {}).get(section) or {}).items():
            if value is None or key not in _RESOURCE_KEYS:
                continue
            if key == "cpus":
                out[f"{section}.cpus"] = parse_nano_cpus(value)
            elif key == "memory":
                out[f"{section}.memory"] = parse_bytes(value)
            else:
                out[f"{section}.{key}"] = int(value)
    return out


def _compose_argv(raw: Any) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return tuple(shlex.split(raw))
    return tuple(str(x) for x in raw)


def _attached(attached: Attached) -> dict[str, Any]:
    return {
        "networks": attached.networks,
        "secrets": attached.secrets,
        "configs": attached.configs,
        "mounts": attached.mounts,
        "placement": attached.placement,
        "healthcheck": attached.healthcheck,
    }


def fields_from_compose(service: JSONDict, names: Names | None = None) -> ServiceFields:
    """The comparable view of a rendered compose service (image already resolved). Raises
    ``ValueError``/``KeyError`` on values docker would reject (caught by validation).
    ``names``: the stack's networks, secrets, configs and volumes (without them those are not
    compared)."""
    deploy = service.get("deploy") or {}
    mode = str(deploy.get("mode", "replicated"))
    replicated = mode in ("replicated", "replicated-job")
    replicas = int(deploy.get("replicas", 1)) if replicated else None
    return ServiceFields(
        image=str(service["image"]),
        mode=mode,
        replicas=replicas,
        env=compose_env(service.get("environment")),
        labels=compose_labels(deploy.get("labels")),
        container_labels=compose_labels(service.get("labels")),
        ports=compose_ports(service.get("ports")),
        resources=_compose_resources(deploy.get("resources")),
        update_config=_compose_update(deploy.get("update_config")),
        rollback_config=_compose_update(deploy.get("rollback_config")),
        command=_compose_argv(service.get("command")),
        entrypoint=_compose_argv(service.get("entrypoint")),
        **_attached(from_compose(service, names)),
    )


# ------------------------------------------------------------------ Swarm spec → fields


def _swarm_update(raw: Any) -> dict[str, str]:
    raw = raw or {}
    out: dict[str, str] = {}
    for key, (swarm_key, kind) in _UPDATE_KEYS.items():
        value = raw.get(swarm_key)
        if value is None:
            value = {"duration": 0, "float": 0.0, "int": 0, "str": ""}[kind]
        out[key] = _normalize(kind, value / 1e9 if kind == "duration" else value)
    return out


def _swarm_resources(raw: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for section, swarm_section in (("limits", "Limits"), ("reservations", "Reservations")):
        values = (raw or {}).get(swarm_section) or {}
        for key, swarm_key in _RESOURCE_KEYS.items():
            out[f"{section}.{key}"] = int(values.get(swarm_key) or 0)
    return out


def fields_from_swarm(
    spec: JSONDict, network_names: Mapping[str, str] | None = None
) -> ServiceFields:
    """The comparable view of a live service spec (``docker service inspect`` ``.Spec``);
    ``network_names``: network ID → name (without it the networks are not compared)."""
    task = spec.get("TaskTemplate") or {}
    container = task.get("ContainerSpec") or {}
    mode_raw = spec.get("Mode") or {}
    replicas: int | None = None
    if "Global" in mode_raw:
        mode = "global"
    elif "GlobalJob" in mode_raw:
        mode = "global-job"
    elif "ReplicatedJob" in mode_raw:
        mode = "replicated-job"
        replicas = int((mode_raw["ReplicatedJob"] or {}).get("TotalCompletions") or 0)
    else:
        mode = "replicated"
        replicas = int((mode_raw.get("Replicated") or {}).get("Replicas") or 0)
    ports = tuple(
        sorted(
            (
                PortSpec(
                    target=int(p["TargetPort"]),
                    published=int(p["PublishedPort"]) if p.get("PublishedPort") else None,
                    protocol=str(p.get("Protocol", "tcp")),
                    mode=str(p.get("PublishMode", "ingress")),
                )
                for p in (spec.get("EndpointSpec") or {}).get("Ports") or []
            ),
            key=lambda p: (p.target, p.protocol, p.published or 0, p.mode),
        )
    )
    args = container.get("Args")
    command = container.get("Command")
    return ServiceFields(
        image=str(container.get("Image", "")),
        mode=mode,
        replicas=replicas,
        env=compose_env(container.get("Env") or []),
        labels=_comparable_labels(spec.get("Labels") or {}),
        container_labels=_comparable_labels(container.get("Labels") or {}),
        ports=ports,
        resources=_swarm_resources(task.get("Resources")),
        update_config=_swarm_update(spec.get("UpdateConfig")),
        rollback_config=_swarm_update(spec.get("RollbackConfig")),
        command=tuple(args) if args else (),
        entrypoint=tuple(command) if command else (),
        **_attached(from_swarm(spec, network_names)),
    )


# ------------------------------------------------------------------ diff


def _map_diff(prefix: str, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[FieldDiff]:
    out = []
    for key in sorted(set(want) | set(have)):
        w, h = want.get(key), have.get(key)
        if w != h:
            out.append(FieldDiff(f"{prefix}.{key}", _s(w), _s(h)))
    return out


def _s(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value) if value else "(none)"
    return str(value)


def _declared_diff(
    prefix: str, want: Mapping[str, Any], have: Mapping[str, Any], missing: Any = None
) -> list[FieldDiff]:
    """The keys the desired side declares whose live value differs (absent live = ``missing``)."""
    return [
        FieldDiff(f"{prefix}.{key}", _s(value), _s(have.get(key)))
        for key, value in sorted(want.items())
        if have.get(key, missing) != value
    ]


def _argv_diff(
    name: str, want: tuple[str, ...] | None, have: tuple[str, ...] | None
) -> list[FieldDiff]:
    if want is None or want == have:
        return []
    return [FieldDiff(name, _s(want), _s(have))]


def _ports_text(ports: tuple[PortSpec, ...]) -> str:
    return ", ".join(str(p) for p in ports) or "(none)"


def diff_fields(desired: ServiceFields, live: ServiceFields) -> tuple[FieldDiff, ...]:
    """What differs between a desired service and its live spec, field by field. Fields the
    desired side does not declare (update_config keys, resources, command) are not compared."""
    diffs: list[FieldDiff] = []
    if not same_image(desired.image, live.image):
        diffs.append(FieldDiff("image", desired.image, display_image(live.image)))
    if desired.mode != live.mode:
        diffs.append(FieldDiff("mode", desired.mode, live.mode))
    elif desired.replicas is not None and desired.replicas != live.replicas:
        diffs.append(FieldDiff("replicas", _s(desired.replicas), _s(live.replicas)))
    diffs += _map_diff("env", desired.env, live.env)
    diffs += _map_diff("labels", desired.labels, live.labels)
    diffs += _map_diff("container_labels", desired.container_labels, live.container_labels)
    if desired.ports != live.ports:
        diffs.append(FieldDiff("ports", _ports_text(desired.ports), _ports_text(live.ports)))
    diffs += _declared_diff("resources", desired.resources, live.resources, missing=0)
    diffs += _declared_diff("update_config", desired.update_config, live.update_config)
    diffs += _declared_diff("rollback_config", desired.rollback_config, live.rollback_config)
    diffs += _argv_diff("command", desired.command, live.command)
    diffs += _argv_diff("entrypoint", desired.entrypoint, live.entrypoint)
    diffs += _attached_diff(desired, live)
    return tuple(diffs)


def _set_text(values: tuple[str, ...]) -> str:
    return ", ".join(values) or "(none)"


def _attached_diff(desired: ServiceFields, live: ServiceFields) -> list[FieldDiff]:
    """Networks, secrets, configs, mounts, placement and healthcheck: compared whole, where
    both sides can tell."""
    diffs = []
    for name in ("networks", "secrets", "configs", "placement", "mounts"):
        want, have = getattr(desired, name), getattr(live, name)
        if want is None or have is None:
            continue
        same = same_mounts(want, have) if name == "mounts" else want == have
        if not same:
            diffs.append(FieldDiff(name, _set_text(want), _set_text(have)))
    want_health, have_health = desired.healthcheck, live.healthcheck
    if want_health is not None and have_health is not None and want_health != have_health:
        diffs.append(FieldDiff("healthcheck", want_health or "(none)", have_health or "(none)"))
    return diffs
