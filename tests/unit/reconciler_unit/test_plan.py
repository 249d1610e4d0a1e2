"""The plan: create / update (git or drift) / remove / orphan / unchanged, field by field."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler.checks import parse_status_spec, version_served
from reconciler.desired import RenderOptions, render
from reconciler.fields import fields_from_swarm
from reconciler.models import Action, Cause, DesiredState, LiveService, LiveState
from reconciler.plan import describe, inventory, plan

EXAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "desired-state" / "example"
DIGEST = "sha256:" + "0" * 64
#: the engine's networks, ID → name (a service's spec names its networks by ID)
NETWORK_NAMES = {"id-demo_front": "demo_front", "id-demo_back": "demo_back"}


@pytest.fixture(scope="module")
def desired() -> DesiredState:
    return render(EXAMPLE, RenderOptions(stack="demo", environment="test"))


def swarm_spec(desired: DesiredState, name: str) -> dict[str, Any]:
    """What Swarm stores after `docker stack deploy` of the example (as `docker service inspect`
    shows it; shape taken from a Docker 20.10 engine)."""
    spec = desired.service(name)
    assert spec is not None
    f = spec.fields
    labels = {
        **f.labels,
        "com.docker.stack.namespace": "demo",
        "com.docker.stack.image": spec.image,
        "driftless.spec-hash": spec.spec_hash,
        "driftless.revision": "r1",
    }
    container: dict[str, Any] = {
        "Image": f"{spec.image}@{DIGEST}",
        "Labels": {"com.docker.stack.namespace": "demo"},
        "Env": sorted(f"{k}={v}" for k, v in f.env.items()),
        "Privileges": {"CredentialSpec": None, "SELinuxContext": None},
        "Isolation": "default",
    }
    if f.command:
        container["Args"] = list(f.command)
    container["Configs"] = [
        {"ConfigID": f"id-{n}", "ConfigName": n, "File": {"Name": "/x", "Mode": 292}}
        for n in f.configs or ()
    ]
    update = {
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": 5_000_000_000,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    }
    if name == "web":
        update.update({"Delay": 1_000_000_000, "FailureAction": "rollback"})
    resources: dict[str, Any] = {}
    if name == "web":
        resources = {"Limits": {"NanoCPUs": 250_000_000, "MemoryBytes": 67108864}}
    return {
        "Name": f"demo_{name}",
        "Labels": labels,
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": resources,
            "ForceUpdate": 0,
            "Networks": [{"Target": f"id-{n}", "Aliases": [name]} for n in f.networks or ()],
        },
        "Mode": {"Replicated": {"Replicas": f.replicas}},
        "UpdateConfig": update,
        "RollbackConfig": {"Parallelism": 1, "FailureAction": "pause", "Order": "stop-first"},
        "EndpointSpec": {
            "Mode": "dnsrr",
            "Ports": [
                {
                    "Protocol": p.protocol,
                    "TargetPort": p.target,
                    "PublishedPort": p.published,
                    "PublishMode": p.mode,
                }
                for p in f.ports
            ],
        },
    }


def live_from(specs: dict[str, dict[str, Any]]) -> LiveState:
    services = []
    for name, spec in specs.items():
        fields = fields_from_swarm(spec, NETWORK_NAMES)
        services.append(
            LiveService(
                name=name,
                id=f"id-{name}",
                version=1,
                fields=fields,
                spec_hash=spec["Labels"].get("driftless.spec-hash"),
                revision=spec["Labels"].get("driftless.revision"),
                replicas_running=fields.replicas or 0,
                replicas_desired=fields.replicas or 0,
                spec=spec,
            )
        )
    return LiveState(stack="demo", services=tuple(services))


def live_specs(desired: DesiredState) -> dict[str, dict[str, Any]]:
    return {s.name: swarm_spec(desired, s.name) for s in desired.services}


def test_first_deploy_creates_everything(desired: DesiredState) -> None:
    p = plan(desired, LiveState("demo", ()), prune=False)
    assert [(c.service, c.action, c.cause) for c in p.changes] == [
        ("web", Action.CREATE, Cause.NEW),
        ("worker", Action.CREATE, Cause.NEW),
    ]
    assert not p.empty


def test_what_stack_deploy_made_compares_equal(desired: DesiredState) -> None:
    p = plan(desired, live_from(live_specs(desired)), prune=False)
    assert p.empty, describe(p)
    assert "in sync" in describe(p)


def test_a_tag_bump_is_a_definition_update_with_the_image_diff(desired: DesiredState) -> None:
    specs = live_specs(desired)
    web = desired.service("web")
    assert web is not None
    bumped = replace(
        desired,
        services=(
            replace(
                web,
                image="127.0.0.1:5000/example/web:1.4.3",
                spec_hash="new",
                fields=replace(web.fields, image="127.0.0.1:5000/example/web:1.4.3"),
            ),
            *desired.services[1:],
        ),
    )
    p = plan(bumped, live_from(specs), prune=False)
    change = p.change("web")
    assert change is not None
    assert (change.action, change.cause) == (Action.UPDATE, Cause.DEFINITION)
    assert [str(d) for d in change.diffs] == [
        "image: 127.0.0.1:5000/example/web:1.4.2 -> 127.0.0.1:5000/example/web:1.4.3"
    ]
    assert p.change("worker").action == Action.UNCHANGED  # type: ignore[union-attr]


def test_manual_scale_env_and_label_changes_are_drift(desired: DesiredState) -> None:
    specs = live_specs(desired)
    specs["web"]["Mode"]["Replicated"]["Replicas"] = 5
    specs["web"]["TaskTemplate"]["ContainerSpec"]["Env"].append("DEBUG=1")
    specs["worker"]["Labels"]["owner"] = "someone"
    specs["worker"]["UpdateConfig"]["Parallelism"] = 3  # not declared in git: not compared
    p = plan(desired, live_from(specs), prune=False)
    web, worker = p.change("web"), p.change("worker")
    assert web is not None
    assert worker is not None
    assert (web.action, web.cause) == (Action.UPDATE, Cause.DRIFT)
    assert {(d.field, d.desired, d.live) for d in web.diffs} == {
        ("replicas", "2", "5"),
        ("env.DEBUG", None, "1"),
    }
    assert [d.field for d in worker.diffs] == ["labels.owner"]
    assert p.only_drift
    assert "(drift: changed outside git)" in describe(p)
    assert "replicas: 5 -> 2" in describe(p)


def test_declared_update_config_and_resources_are_compared(desired: DesiredState) -> None:
    specs = live_specs(desired)
    specs["web"]["UpdateConfig"]["Order"] = "start-first"
    specs["web"]["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"] = 1
    specs["web"]["EndpointSpec"]["Ports"][0]["PublishedPort"] = 9999
    change = plan(desired, live_from(specs), prune=False).change("web")
    assert change is not None
    assert {d.field for d in change.diffs} == {
        "update_config.order",
        "resources.limits.memory",
        "ports",
    }


def test_networks_secrets_configs_mounts_placement_and_healthcheck_changed_by_hand_are_drift(
    desired: DesiredState,
) -> None:
    """What ``docker service update --network-add/--secret-add/--config-rm/--mount-add/
    --constraint-add/--health-cmd`` does to the spec (shapes from a Docker 20.10 engine)."""
    specs = live_specs(desired)
    web = specs["web"]["TaskTemplate"]
    web["Networks"].append({"Target": "id-demo_back", "Aliases": ["web"]})
    web["ContainerSpec"]["Secrets"] = [
        {"SecretID": "s1", "SecretName": "demo_db_password", "File": {"Name": "db_password"}}
    ]
    web["ContainerSpec"]["Configs"] = []
    worker = specs["worker"]["TaskTemplate"]
    worker["ContainerSpec"]["Mounts"] = [
        {"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/var/run/docker.sock"}
    ]
    worker["Placement"] = {"Constraints": ["node.role==manager"]}
    worker["ContainerSpec"]["Healthcheck"] = {
        "Test": ["CMD-SHELL", "true"],
        "Interval": 5_000_000_000,
        "Retries": 3,
    }
    p = plan(desired, live_from(specs), prune=False)
    web_change, worker_change = p.change("web"), p.change("worker")
    assert web_change is not None
    assert worker_change is not None
    assert {(d.field, d.desired, d.live) for d in web_change.diffs} == {
        ("networks", "demo_front", "demo_back, demo_front"),
        ("secrets", "(none)", "demo_db_password"),
        ("configs", "demo_web_conf_0083dacc", "(none)"),
    }
    assert {(d.field, d.desired, d.live) for d in worker_change.diffs} == {
        ("mounts", "(none)", "bind /var/run/docker.sock /var/run/docker.sock rw"),
        ("placement", "(none)", "node.role==manager"),
        ("healthcheck", "(none)", "test=CMD-SHELL true; interval=5s; retries=3"),
    }
    assert p.only_drift
    # without the engine's network names the networks cannot be told apart: not compared
    fields = fields_from_swarm(specs["web"])
    assert fields.networks is None


def test_declared_mounts_placement_and_healthcheck_compare_equal_to_what_swarm_made() -> None:
    from reconciler.attached import Names
    from reconciler.fields import diff_fields, fields_from_compose

    service = {
        "image": "r/web:1",
        "volumes": ["data:/var/lib/data", "/srv/static:/static:ro", "./conf:/conf", "/scratch"],
        "healthcheck": {"test": "curl -f http://localhost/", "interval": "10s", "retries": 2},
        "deploy": {
            "placement": {
                "constraints": ["node.role == worker"],
                "preferences": [{"spread": "node.labels.zone"}],
                "max_replicas_per_node": 1,
            }
        },
    }
    names = Names("demo", volumes={"data": "demo_data"})
    desired = fields_from_compose(service, names)
    spec = {
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "r/web:1",
                "Mounts": [
                    {"Type": "volume", "Source": "demo_data", "Target": "/var/lib/data"},
                    {
                        "Type": "bind",
                        "Source": "/srv/static",
                        "Target": "/static",
                        "ReadOnly": True,
                    },
                    {"Type": "bind", "Source": "/home/deploy/conf", "Target": "/conf"},
                    {"Type": "volume", "Target": "/scratch"},
                ],
                "Healthcheck": {
                    "Test": ["CMD-SHELL", "curl -f http://localhost/"],
                    "Interval": 10_000_000_000,
                    "Retries": 2,
                },
            },
            "Placement": {
                "Constraints": ["node.role == worker"],
                "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
                "MaxReplicas": 1,
            },
            "Networks": [{"Target": "n1"}],
        },
        "Mode": {"Replicated": {"Replicas": 1}},
    }
    spec["TaskTemplate"]["ContainerSpec"]["Mounts"][1]["ReadOnly"] = True
    live = fields_from_swarm(spec, {"n1": "demo_default"})
    assert diff_fields(desired, live) == ()
    spec["TaskTemplate"]["ContainerSpec"]["Mounts"][1]["ReadOnly"] = False
    spec["TaskTemplate"]["Placement"]["MaxReplicas"] = 2
    assert [d.field for d in diff_fields(desired, fields_from_swarm(spec, {}))] == [
        "networks",
        "placement",
        "mounts",
    ]


def test_removed_from_git_depends_on_prune(desired: DesiredState) -> None:
    specs = live_specs(desired)
    extra = copy.deepcopy(specs["worker"])
    extra["Name"] = "demo_old"
    specs["old"] = extra
    kept = plan(desired, live_from(specs), prune=False)
    assert kept.change("old").action == Action.ORPHAN  # type: ignore[union-attr]
    assert kept.empty
    assert "kept, prune off" in describe(kept)
    pruned = plan(desired, live_from(specs), prune=True)
    assert pruned.change("old").action == Action.REMOVE  # type: ignore[union-attr]
    assert [c.service for c in pruned.to_apply] == ["old"]


def test_a_service_not_applied_by_us_is_adopted(desired: DesiredState) -> None:
    specs = live_specs(desired)
    del specs["worker"]["Labels"]["driftless.spec-hash"]
    change = plan(desired, live_from(specs), prune=False).change("worker")
    assert change is not None
    assert (change.action, change.cause) == (Action.UPDATE, Cause.DEFINITION)
    assert change.diffs[0].field == "definition"


def test_inventory_reports_sync_replicas_and_drift(desired: DesiredState) -> None:
    specs = live_specs(desired)
    specs["web"]["Mode"]["Replicated"]["Replicas"] = 1
    live = live_from(specs)
    live = replace(live, services=(replace(live.services[0], replicas_running=1), live.services[1]))
    p = plan(desired, live, prune=False)
    inv = {s.name: s for s in inventory(desired, live, p)}
    assert not inv["web"].in_sync
    assert inv["web"].replicas_desired == 2
    assert inv["web"].replicas_running == 1
    assert inv["web"].healthy is False
    assert [d.field for d in inv["web"].drift] == ["replicas"]
    assert inv["worker"].in_sync
    assert inv["web"].live_image == "127.0.0.1:5000/example/web:1.4.2"


def test_status_specs_and_version_matching() -> None:
    assert parse_status_spec("200,204") == (200, 204)
    assert parse_status_spec("2xx")[0] == 200
    assert parse_status_spec("301-302") == (301, 302)
    for bad in ("abc", "600", "300-200", ""):
        with pytest.raises(ValueError, match="status"):
            parse_status_spec(bad)
    assert version_served('{"version": "1.4.2", "revision": "abc"}', "1.4.2")
    assert not version_served('{"version": "1.4.21"}', "1.4.2")
    assert version_served("app 1.4.2 ready", "1.4.2")
    assert not version_served("app 1.4.21 ready", "1.4.2")
