"""Alertmanager configuration: Debian's amtool checks it and shows where each alert goes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from obs_support import alertmanager, files

AMTOOL = shutil.which("amtool")
pytestmark = pytest.mark.skipif(AMTOOL is None, reason="amtool missing: run scripts/deps.sh")


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert AMTOOL is not None
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return alertmanager.write_variant(tmp_path_factory.mktemp("am"), alertmanager.DEFAULT_SECRETS)


def test_amtool_check_config_passes(variant: Path) -> None:
    result = amtool("check-config", str(variant))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout
    assert "SUCCESS" in result.stdout


def test_the_variant_differs_only_in_credentials_and_paths(variant: Path) -> None:
    original = files.ALERTMANAGER_CONFIG.read_text()
    rewritten = variant.read_text()
    # same receivers, routes and inhibitions; only credentials and the template glob moved
    prod = files.load_yaml(files.ALERTMANAGER_CONFIG)
    test = files.load_yaml(variant)
    assert prod["route"] == test["route"]
    assert prod["inhibit_rules"] == test["inhibit_rules"]
    assert [r["name"] for r in prod["receivers"]] == [r["name"] for r in test["receivers"]]
    assert "webhook_url_file" in original
    assert "webhook_url_file" not in rewritten


def test_a_broken_template_fails_the_check(tmp_path: Path, variant: Path) -> None:
    bad = tmp_path / "bad.tmpl"
    bad.write_text('{{ define "x" }}{{ .Status }\n')
    text = variant.read_text().replace(str(files.ALERTMANAGER_TEMPLATES / "*.tmpl"), str(bad))
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(text)
    result = amtool("check-config", str(broken))
    assert result.returncode != 0


def route(variant: Path, labels: dict[str, str], receivers: list[str]) -> None:
    pairs = [f"{k}={v}" for k, v in labels.items()]
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={variant}",
        f"--verify.receivers={','.join(receivers)}",
        *pairs,
    )
    assert result.returncode == 0, (
        f"{labels} went to {result.stdout.strip()!r}, expected {receivers}: {result.stderr}"
    )


def test_routing_cases(variant: Path) -> None:
    spec = files.load_yaml(files.ROUTING_TESTS)
    assert spec["cases"]
    for case in spec["cases"]:
        route(variant, case["labels"], case["receivers"])


def test_every_alert_reaches_the_receiver_of_its_severity(variant: Path) -> None:
    spec = files.load_yaml(files.ROUTING_TESTS)
    seen = set()
    for rule in files.rules("alert"):
        severity = rule["labels"]["severity"]
        key = (rule["alert"], severity)
        if key in seen:
            continue
        seen.add(key)
        labels = {"alertname": rule["alert"], "severity": severity, "environment": "production"}
        route(variant, labels, spec["severity_receivers"][severity])


def test_a_wrong_expectation_is_reported(variant: Path) -> None:
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={variant}",
        "--verify.receivers=team",
        "alertname=ApiDown",
        "severity=critical",
    )
    assert result.returncode != 0


def test_receivers_cover_slack_discord_and_email_and_send_resolved() -> None:
    config = files.load_yaml(files.ALERTMANAGER_CONFIG)
    receivers = {r["name"]: r for r in config["receivers"]}
    oncall = receivers["oncall"]
    assert oncall["email_configs"]
    assert oncall["slack_configs"]
    assert oncall["discord_configs"]
    for name in ("oncall", "team"):
        for kind in ("slack_configs", "discord_configs", "email_configs"):
            for item in receivers[name].get(kind, []):
                assert item.get("send_resolved") is True, f"{name}/{kind}"


def test_credentials_come_from_files_only() -> None:
    text = files.ALERTMANAGER_CONFIG.read_text()
    config = files.load_yaml(files.ALERTMANAGER_CONFIG)
    assert not re.search(r"hooks\.slack\.com|discord(app)?\.com/api/webhooks", text)
    assert "smtp_auth_password:" not in text
    assert "auth_password:" not in text
    assert "api_url:" not in text
    assert "webhook_url:" not in text
    for path in alertmanager.secret_files(config):
        assert path.startswith("/run/secrets/"), path


def test_inhibition_mutes_target_down_while_the_node_is_down() -> None:
    config = files.load_yaml(files.ALERTMANAGER_CONFIG)
    node = [r for r in config["inhibit_rules"] if 'alertname="NodeDown"' in r["source_matchers"]]
    assert node
    assert "TargetDown" in node[0]["target_matchers"][0]
    assert "environment" in node[0]["equal"]
    assert config["route"]["group_by"]
    assert "alertname" in config["route"]["group_by"]
