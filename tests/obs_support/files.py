"""Paths of the observability configuration and loaders for it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
OBS = ROOT / "observability"
PROMETHEUS_CONFIG = OBS / "prometheus" / "prometheus.yml"
RULES_DIR = OBS / "prometheus" / "rules"
RULE_TESTS_DIR = OBS / "prometheus" / "tests"
ALERTMANAGER_CONFIG = OBS / "alertmanager" / "alertmanager.yml"
ALERTMANAGER_TEMPLATES = OBS / "alertmanager" / "templates"
ROUTING_TESTS = OBS / "alertmanager" / "routing-tests.yml"
BLACKBOX_CONFIG = OBS / "blackbox" / "blackbox.yml"
GRAFANA = OBS / "grafana"
GRAFANA_INI = GRAFANA / "grafana.ini"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "datasources.yml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "dashboards.yml"
DASHBOARDS_DIR = GRAFANA / "dashboards"
LOKI_CONFIG = OBS / "loki" / "loki.yml"
ALLOY_CONFIG = OBS / "alloy" / "config.alloy"
VERSIONS = OBS / "versions.yml"
RUNBOOK = ROOT / "runbooks" / "alerts.md"
INTERFACES = ROOT / "docs" / "interfaces.md"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def rules(kind: str) -> list[dict[str, Any]]:
    """Every rule of one kind ("alert" or "record") across the rule files, with its group name."""
    found = []
    for path in rule_files():
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                if kind in rule:
                    found.append({**rule, "_group": group["name"], "_file": path.name})
    return found


def dashboards() -> dict[str, dict[str, Any]]:
    """Dashboard file name -> parsed JSON."""
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS_DIR.glob("*.json"))}


def markdown_anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    anchors = set()
    for line in path.read_text().splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if m:
            text = m.group(1).strip().lower()
            text = re.sub(r"[^\w\- ]", "", text)
            anchors.add(text.replace(" ", "-"))
    return anchors


def stack_services() -> list[str]:
    """The production stack's service names as docs/interfaces.md lists them."""
    text = INTERFACES.read_text()
    section = text.split("## The production stack", 1)[1]
    para = section.split("Service names", 1)[1].split("\n\n", 2)[1]
    return re.findall(r"`([a-z0-9-]+)`", para)
