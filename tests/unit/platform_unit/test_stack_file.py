"""The production and staging stacks keep the promises their users rely on (no Docker engine
needed: the docker CLI merges each environment's stack.yml on the shared base as `docker stack
deploy -c base/stack.yml -c stack.yml` does).

`tests/e2e/platform/` deploys the same files on a real Swarm; these checks catch, in milliseconds,
the mistakes that would otherwise surface as a refused revision or an unsafe deployment.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.adapters.compose_merge import cli_merge
from reconciler.sopsfiles import Format, check_encrypted

ROOT = Path(__file__).resolve().parents[3]
PROD = ROOT / "desired-state" / "production"
STAGING = ROOT / "desired-state" / "staging"


def merged(folder: Path) -> dict[str, Any]:
    """What ``docker stack deploy`` would deploy from the folder (variables at their defaults),
    merged by the agent's own merge (the docker CLI)."""
    doc: dict[str, Any] = yaml.safe_load(
        cli_merge()([folder.parent / "base" / "stack.yml", folder / "stack.yml"], {})
    )
    return doc


def mounts(service: dict[str, Any]) -> list[str]:
    """The service's volumes in the short form (``source:target[:ro]``)."""
    return [
        f"{v['source']}:{v['target']}" + (":ro" if v.get("read_only") else "")
        for v in service.get("volumes", [])
    ]


#: addresses that carry no credential (the git token comes from a secret file)
NOT_CREDENTIALS = {
    "GF_SERVER_ROOT_URL",
    "RECONCILER_GIT__URL",
    "RECONCILER_ANALYSIS__PROMETHEUS_URL",
}


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return merged(PROD)


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    return yaml.safe_load((PROD / "images.yaml").read_text())


def test_every_service_gets_its_image_from_images_yaml(
    stack: dict[str, Any], images: dict[str, str]
) -> None:
    services = set(stack["services"])
    assert set(images) == services
    assert not [name for name, svc in stack["services"].items() if "image" in svc]
    assert images["api"] == images["migrate"], "migrate runs the API image's migrations"


def test_the_service_names_are_the_documented_ones(stack: dict[str, Any]) -> None:
    interfaces = (ROOT / "docs" / "interfaces.md").read_text()
    for name in stack["services"]:
        assert f"`{name}`" in interfaces, f"service {name} is not in docs/interfaces.md"


def test_api_rolls_out_with_zero_downtime_and_rolls_back(stack: dict[str, Any]) -> None:
    api = stack["services"]["api"]
    deploy = api["deploy"]
    assert deploy["replicas"] == 3
    assert deploy["update_config"]["order"] == "start-first"
    assert deploy["update_config"]["failure_action"] == "rollback"
    assert deploy["update_config"]["parallelism"] == 1
    assert deploy["rollback_config"]["order"] == "start-first"
    assert deploy["restart_policy"]["condition"] == "any"
    assert deploy["resources"]["limits"]
    assert deploy["resources"]["reservations"]
    assert "/health/ready" in " ".join(api["healthcheck"]["test"])
    assert api["stop_grace_period"]
    # over several nodes the replicas spread (one per node while there are enough)
    assert {"spread": "node.id"} in deploy["placement"]["preferences"]
    labels = deploy["labels"]
    assert labels["driftless.health.expect-version"] == "{tag}"
    assert stack["networks"][labels["driftless.health.network"]].get("attachable") is True


def test_migrations_run_once_per_release(stack: dict[str, Any]) -> None:
    migrate = stack["services"]["migrate"]
    assert migrate["command"] == ["api", "migrate"]
    assert migrate["deploy"]["mode"] == "replicated-job"


def test_networks_separate_edge_data_and_monitoring(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert stack["networks"]["backend"]["internal"] is True
    assert set(services["postgres"]["networks"]) == {"backend"}
    assert set(services["redis"]["networks"]) == {"backend"}
    assert "backend" not in services["nginx"]["networks"]
    assert set(services["api"]["networks"]) == {"edge", "backend", "monitoring"}
    for name, svc in services.items():
        if name.endswith("exporter") or name in {"prometheus", "alertmanager", "grafana", "loki"}:
            assert "monitoring" in svc["networks"], name
            assert "edge" not in svc["networks"], name
    # the reconciler's probe reaches Prometheus, and nothing else, on a network of their own;
    # the agent service reaches its probe there (the probe starts on it)
    assert stack["networks"]["analysis"]["attachable"] is True
    on_analysis = [n for n, s in services.items() if "analysis" in s.get("networks", ())]
    assert on_analysis == ["prometheus", "reconciler"]
    agent = services["reconciler"]["environment"]
    assert agent["RECONCILER_HEALTH__PROBE_NETWORK"] == "analysis"


def test_stateful_services_and_the_edge_are_placed_by_node_labels(stack: dict[str, Any]) -> None:
    """Volumes are node-local: a stateful service stays on the node its label names (one VM has
    every label: scripts/up.sh, bootstrap-vm.sh); nginx publishes on the edge nodes."""
    placed = {
        "postgres": "node.labels.driftless.db == true",
        "redis": "node.labels.driftless.db == true",
        "prometheus": "node.labels.driftless.monitoring == true",
        "alertmanager": "node.labels.driftless.monitoring == true",
        "grafana": "node.labels.driftless.monitoring == true",
        "loki": "node.labels.driftless.monitoring == true",
        "nginx": "node.labels.driftless.role == edge",
        "certbot": "node.labels.driftless.role == edge",
    }
    for name, constraint in placed.items():
        svc = stack["services"][name]
        named = [v.split(":")[0] for v in mounts(svc) if not v.startswith("/")]
        assert all(v in stack["volumes"] for v in named), name
        assert svc["deploy"]["placement"]["constraints"] == [constraint], name
    labels = {c.split(".", 2)[2].replace(" == ", "=") for c in placed.values()}
    for script in ("scripts/lib/common.sh", "scripts/bootstrap-vm.sh"):  # what labels one VM
        text = (ROOT / script).read_text()
        assert all(label in text for label in labels), (script, labels)


def test_nginx_publishes_in_host_mode_and_is_not_started_first(stack: dict[str, Any]) -> None:
    nginx = stack["services"]["nginx"]
    assert {p["target"] for p in nginx["ports"]} == {80, 443}
    assert all(p["mode"] == "host" for p in nginx["ports"])
    assert nginx["deploy"]["update_config"]["order"] == "stop-first"
    assert not [n for n, s in stack["services"].items() if n != "nginx" and s.get("ports")]


def test_nginx_and_prometheus_find_the_host_reconciler_at_the_same_address(
    stack: dict[str, Any],
) -> None:
    # nginx.conf's `upstream reconciler` names host.docker.internal: without the hosts entry nginx
    # would not start at all
    conf = (ROOT / "nginx" / "nginx.conf").read_text()
    assert "server host.docker.internal:9480;" in conf
    services = stack["services"]
    assert services["nginx"]["extra_hosts"] == services["prometheus"]["extra_hosts"]
    assert services["nginx"]["extra_hosts"] == ["host.docker.internal:172.18.0.1"]  # default


def test_node_exporter_reads_the_backup_metrics_where_the_backup_unit_writes_them(
    stack: dict[str, Any],
) -> None:
    unit = (ROOT / "systemd" / "driftless-backup.service").read_text()
    (host_dir,) = [
        line.split("=", 2)[2]
        for line in unit.splitlines()
        if line.startswith("Environment=BACKUP_TEXTFILE_DIR=")
    ]
    exporter = stack["services"]["node-exporter"]
    assert f"{host_dir}:/textfile:ro" in mounts(exporter)
    assert "--collector.textfile.directory=/textfile" in exporter["command"]
    # a bind mount's source must exist: the bootstrap creates it, readable by the exporter
    assert f"ensure_dir {host_dir} 0755 root:root" in (ROOT / "scripts/bootstrap-vm.sh").read_text()


def test_every_credential_is_an_entry_of_the_encrypted_file_the_secrets_script_writes(
    stack: dict[str, Any],
) -> None:
    made = subprocess.run(
        [str(ROOT / "scripts" / "make-secrets.sh"), "names"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert set(stack["secrets"]) == set(made)
    for key, spec in stack["secrets"].items():
        assert spec == {"file": str(PROD / "secrets.sops.yaml")}, key  # the entry of its name
    sealed = (PROD / "secrets.sops.yaml").read_text()
    assert check_encrypted(sealed, Format.YAML, None) is None
    document = yaml.safe_load(sealed)
    assert set(document) - {"sops"} == set(made)
    assert all(str(v).startswith("ENC[AES256_GCM,") for k, v in document.items() if k != "sops")
    for name, svc in stack["services"].items():
        for var in svc.get("environment", {}):
            sensitive = any(w in var for w in ("PASSWORD", "TOKEN", "SECRET", "_URL"))
            if sensitive and var not in NOT_CREDENTIALS:
                assert var.endswith("_FILE"), f"{name}: {var} must come from a secret file"


def test_config_files_exist_inside_the_repository(stack: dict[str, Any]) -> None:
    for key, spec in stack["configs"].items():
        path = (PROD / spec["file"]).resolve()
        assert path.is_file(), f"config {key}: {spec['file']} does not exist"
        assert path.is_relative_to(ROOT), key
    used = {c["source"] for svc in stack["services"].values() for c in svc.get("configs", [])}
    assert used == set(stack["configs"]), "a config is defined but unused, or used but undefined"


def test_the_reconciler_service_is_optional_on_a_manager_with_the_docker_socket(
    stack: dict[str, Any],
) -> None:
    # normally the agent runs under systemd on the host; two agents on one stack would fight
    svc = stack["services"]["reconciler"]
    assert svc["deploy"]["replicas"] == 0
    assert "node.role == manager" in svc["deploy"]["placement"]["constraints"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in mounts(svc)
    assert any(v.split(":")[1] == "/var/lib/reconciler" for v in mounts(svc))
    assert svc["deploy"]["update_config"]["order"] == "stop-first", "never two at once"
    assert svc["environment"]["RECONCILER_GIT__TOKEN_FILE"].startswith("/run/secrets/")
    # it decrypts secrets.sops.yaml with the manager's age key, mounted read-only
    key = svc["environment"]["RECONCILER_RENDER__SOPS_AGE_KEY_FILE"]
    assert f"/etc/reconciler/secrets/age.key:{key}:ro" in mounts(svc)
    # its state in the Swarm, so that a task on another manager takes over (one writer by lease)
    assert svc["environment"]["RECONCILER_STATE__STORE"] == "swarm"
    assert svc["environment"]["DRIFTLESS_NODE"] == "{{.Node.Hostname}}"


def test_staging_is_production_smaller_with_its_own_secrets(stack: dict[str, Any]) -> None:
    staging = merged(STAGING)
    assert set(staging["services"]) == set(stack["services"])
    assert set(yaml.safe_load((STAGING / "images.yaml").read_text())) == set(stack["services"])
    api, prod_api = staging["services"]["api"], stack["services"]["api"]
    assert api["environment"]["ENVIRONMENT"] == "staging"
    assert prod_api["environment"]["ENVIRONMENT"] == "production"
    assert staging["services"]["migrate"]["environment"]["ENVIRONMENT"] == "staging"
    assert 1 < api["deploy"]["replicas"] < prod_api["deploy"]["replicas"]  # room for a canary
    assert api["deploy"]["labels"]["driftless.rollout.canary"] == "1"
    assert api["deploy"]["update_config"] == prod_api["deploy"]["update_config"]
    limit = api["deploy"]["resources"]["limits"]["memory"]
    assert limit < prod_api["deploy"]["resources"]["limits"]["memory"]
    assert set(staging["secrets"]) == set(stack["secrets"])
    for spec in staging["secrets"].values():
        assert spec == {"file": str(STAGING / "secrets.sops.yaml")}
    sealed = (STAGING / "secrets.sops.yaml").read_text()
    assert check_encrypted(sealed, Format.YAML, None) is None
    assert sealed != (PROD / "secrets.sops.yaml").read_text()
    agent = staging["services"]["reconciler"]["environment"]
    assert agent["RECONCILER_GIT__PATH"] == "desired-state/staging"
    assert agent["RECONCILER_ENVIRONMENT"] == "staging"
