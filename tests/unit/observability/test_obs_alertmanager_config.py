"""Alertmanager configuration: amtool checks it and shows where each alert goes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from obs_support import alertmanager, files, tools

# Debian 13's amtool 0.28.1 is the production release; Debian 12's 0.25 is checked as well.
AMTOOL = {"0.28": tools.debian13("amtool"), "0.25": tools.debian12("amtool")}


def amtool(*args: str, release: str = "0.28") -> subprocess.CompletedProcess[str]:
    return subprocess.run([AMTOOL[release], *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The production file with only the template glob pointed at the repository (so the
    templates are parsed too); credential paths stay as they are: amtool does not read them."""
    text = files.ALERTMANAGER_CONFIG.read_text()
    glob = "/etc/alertmanager/templates/*.tmpl"
    assert glob in text
    path = tmp_path_factory.mktemp("am-prod") / "alertmanager.yml"
    path.write_text(text.replace(glob, str(files.ALERTMANAGER_TEMPLATES / "*.tmpl")))
    return path


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return alertmanager.write_variant(
        tmp_path_factory.mktemp("am"), alertmanager.DEFAULT_SECRETS, for_025=True
    )


def test_amtool_028_accepts_the_production_file(production: Path) -> None:
    result = amtool("check-config", str(production))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout
    assert "SUCCESS" in result.stdout


def test_amtool_025_accepts_it_with_discord_inline(variant: Path) -> None:
    result = amtool("check-config", str(variant), release="0.25")
    assert result.returncode == 0, result.stdout + result.stderr
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


def test_a_broken_template_fails_the_check(tmp_path: Path, production: Path) -> None:
    bad = tmp_path / "bad.tmpl"
    bad.write_text('{{ define "x" }}{{ .Status }\n')
    text = production.read_text().replace(str(files.ALERTMANAGER_TEMPLATES / "*.tmpl"), str(bad))
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(text)
    result = amtool("check-config", str(broken))
    assert result.returncode != 0


def route(config: Path, labels: dict[str, str], receivers: list[str]) -> None:
    pairs = [f"{k}={v}" for k, v in labels.items()]
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={config}",
        f"--verify.receivers={','.join(receivers)}",
        *pairs,
    )
    assert result.returncode == 0, (
        f"{labels} went to {result.stdout.strip()!r}, expected {receivers}: {result.stderr}"
    )


def test_routing_cases(production: Path) -> None:
    spec = files.load_yaml(files.ROUTING_TESTS)
    assert spec["cases"]
    for case in spec["cases"]:
        route(production, case["labels"], case["receivers"])


def test_every_alert_reaches_the_receiver_of_its_severity(production: Path) -> None:
    spec = files.load_yaml(files.ROUTING_TESTS)
    seen = set()
    for rule in files.rules("alert"):
        severity = rule["labels"]["severity"]
        key = (rule["alert"], severity)
        if key in seen:
            continue
        seen.add(key)
        labels = {"alertname": rule["alert"], "severity": severity, "environment": "production"}
        route(production, labels, spec["severity_receivers"][severity])


def test_a_wrong_expectation_is_reported(production: Path) -> None:
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={production}",
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
