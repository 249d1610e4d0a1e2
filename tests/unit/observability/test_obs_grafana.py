"""Grafana provisioning and dashboards, checked statically.

Grafana cannot run on these machines (no Debian or PyPI build), so this stands in for it: the
dashboards are validated against a JSON schema of what Grafana needs, every data source a panel
names must be provisioned, and every query is evaluated by a real Prometheus in
tests/integration/observability/test_obs_live_prometheus.py.
"""

from __future__ import annotations

import configparser
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from obs_support import files, queries

SCHEMA = json.loads((Path(__file__).parent / "grafana-dashboard.schema.json").read_text())
DASHBOARDS = files.dashboards()
EXPECTED = {
    "api-performance.json": "driftless-api",
    "system-infrastructure.json": "driftless-system",
    "business.json": "driftless-business",
    "security-logs.json": "driftless-security",
    "deployments.json": "driftless-deployments",
}


def provisioned_uids() -> dict[str, str]:
    doc = files.load_yaml(files.DATASOURCES)
    return {ds["uid"]: ds["type"] for ds in doc["datasources"]}


def test_five_dashboards_with_fixed_unique_uids() -> None:
    assert {name: d["uid"] for name, d in DASHBOARDS.items()} == EXPECTED
    titles = [d["title"] for d in DASHBOARDS.values()]
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_matches_the_schema(name: str) -> None:
    jsonschema.validate(DASHBOARDS[name], SCHEMA)


def test_the_schema_rejects_what_grafana_would_not_load() -> None:
    good = DASHBOARDS["api-performance.json"]
    broken_cases: list[dict[str, Any]] = []
    no_uid = dict(good)
    del no_uid["uid"]
    broken_cases.append(no_uid)
    panel = next(p for p in good["panels"] if p["type"] != "row")
    for field in ("gridPos", "description"):
        bad_panel = {k: v for k, v in panel.items() if k != field}
        broken_cases.append({**good, "panels": [bad_panel]})
    no_ref = {**panel, "targets": [{k: v for k, v in panel["targets"][0].items() if k != "refId"}]}
    broken_cases.append({**good, "panels": [no_ref]})
    no_unit = json.loads(json.dumps(panel))
    del no_unit["fieldConfig"]["defaults"]["unit"]
    broken_cases.append({**good, "panels": [no_unit]})
    for case in broken_cases:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(case, SCHEMA)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_data_source_reference_is_provisioned(name: str) -> None:
    uids = provisioned_uids()
    dashboard = DASHBOARDS[name]
    refs: list[tuple[str, dict[str, str]]] = []
    for panel in queries.panels(dashboard):
        if panel["type"] == "row":
            continue
        refs.append((panel["title"], panel["datasource"]))
        refs += [(f"{panel['title']}/{t['refId']}", t["datasource"]) for t in panel["targets"]]
    for var in dashboard["templating"]["list"]:
        refs.append((f"variable {var['name']}", var["datasource"]))
    for ann in dashboard["annotations"]["list"]:
        if ann.get("builtIn"):
            continue
        refs.append((f"annotation {ann['name']}", ann["datasource"]))
    assert refs
    for where, ref in refs:
        assert ref["uid"] in uids, f"{name} {where}: data source uid {ref['uid']} not provisioned"
        assert uids[ref["uid"]] == ref["type"], f"{name} {where}: type mismatch"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panels_have_units_descriptions_and_fit_the_grid(name: str) -> None:
    dashboard = DASHBOARDS[name]
    ids = set()
    occupied: set[tuple[int, int]] = set()
    for panel in queries.panels(dashboard):
        assert panel["id"] not in ids, f"{name}: duplicate panel id {panel['id']}"
        ids.add(panel["id"])
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, f"{name}: {panel['title']} overflows the grid"
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & occupied, f"{name}: {panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert len(panel["description"]) >= 20, panel["title"]
        refids = [t["refId"] for t in panel["targets"]]
        assert len(set(refids)) == len(refids), f"{name}: {panel['title']} repeats a refId"


def test_dashboards_are_generated_from_the_builder() -> None:
    builder = files.GRAFANA / "build_dashboards.py"
    result = subprocess.run(
        [sys.executable, str(builder), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_the_issue_panels_exist() -> None:
    def titles(name: str) -> set[str]:
        return {p["title"] for p in queries.panels(DASHBOARDS[name])}

    api = titles("api-performance.json")
    assert {
        "Request rate",
        "Latency percentiles",
        "Error ratio by route",
        "Status codes",
        "Top routes",
        "Concurrent active users",
    } <= api
    system = titles("system-infrastructure.json")
    assert {
        "CPU utilisation",
        "Memory and swap",
        "Disk throughput",
        "Free space per filesystem",
        "Network traffic",
        "Containers running per service",
        "Connections",
        "Cache hit ratio",
        "Longest running transaction",
        "Redis commands",
    } <= system
    business = titles("business.json")
    assert {
        "Registrations per day",
        "Products created by category",
        "Login attempts vs successful logins",
        "Requests by country",
        "Requests per hour",
    } <= business
    security = titles("security-logs.json")
    assert {
        "Failed logins (5 min)",
        "4xx rate",
        "5xx rate",
        "Traffic against its baseline",
        "Top client IPs by volume",
        "Error log lines by type",
    } <= security
    deploys = titles("deployments.json")
    assert {
        "Applied revision",
        "Desired revision",
        "Passes by result",
        "Time since last successful pass",
        "Rollbacks and reverts",
        "Services out of sync (drift)",
        "Per-service sync and health",
    } <= deploys
    api_annotations = {a["name"] for a in DASHBOARDS["api-performance.json"]["annotations"]["list"]}
    assert {"Deployments", "Rollbacks"} <= api_annotations


def test_datasources_have_fixed_uids() -> None:
    assert provisioned_uids() == {
        "prometheus": "prometheus",
        "loki": "loki",
        "alertmanager": "alertmanager",
    }
    doc = files.load_yaml(files.DATASOURCES)
    assert doc["apiVersion"] == 1
    urls = {ds["uid"]: ds["url"] for ds in doc["datasources"]}
    assert urls == {
        "prometheus": "http://prometheus:9090",
        "loki": "http://loki:3100",
        "alertmanager": "http://alertmanager:9093",
    }
    defaults = [ds for ds in doc["datasources"] if ds.get("isDefault")]
    assert [ds["uid"] for ds in defaults] == ["prometheus"]


def test_dashboard_provider_points_at_the_mounted_dashboards() -> None:
    doc = files.load_yaml(files.DASHBOARD_PROVIDERS)
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/dashboards"
    assert provider["allowUiUpdates"] is False
    readme = (files.OBS / "README.md").read_text()
    for name in DASHBOARDS:
        assert f"`/etc/grafana/dashboards/{name}`" in readme, f"README: mount of {name}"


def test_grafana_ini_locks_the_front_door() -> None:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(files.GRAFANA_INI.read_text())
    assert ini["security"]["admin_password"] == "$__file{/run/secrets/grafana_admin_password}"
    assert ini["security"]["secret_key"].startswith("$__file{/run/secrets/")
    assert ini["auth.anonymous"]["enabled"] == "false"
    assert ini["users"]["allow_sign_up"] == "false"
    assert ini["users"]["allow_org_create"] == "false"
    assert ini["smtp"]["enabled"] == "true"
    assert ini["smtp"]["password"].startswith("$__file{/run/secrets/")
    assert ini["users"]["default_theme"] in {"dark", "light", "system"}
    home = ini["dashboards"]["default_home_dashboard_path"]
    assert Path(home).name in DASHBOARDS
    assert ini["analytics"]["reporting_enabled"] == "false"
    text = files.GRAFANA_INI.read_text().lower()
    assert "password = " not in text.replace("password = $__file", "")


def test_grafana_is_served_under_grafana_everywhere() -> None:
    """nginx serves Grafana at /grafana/ (no port of its own is published): its root URL, the
    stack and every document agree."""
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(files.GRAFANA_INI.read_text())
    assert ini["server"]["root_url"].endswith("/grafana/")
    assert ini["server"]["serve_from_sub_path"] == "true"
    stack = files.load_yaml(files.ROOT / "desired-state" / "base" / "stack.yml")
    grafana = stack["services"]["grafana"]
    assert grafana["environment"]["GF_SERVER_ROOT_URL"].endswith("/grafana/")
    assert "ports" not in grafana
    assert "location /grafana/ {" in (files.ROOT / "nginx" / "nginx.conf").read_text()
    docs = [
        files.ROOT / "README.md",
        files.OBS / "README.md",
        *sorted((files.ROOT / "docs").glob("*.md")),
        *sorted((files.ROOT / "runbooks").glob("*.md")),
    ]
    wrong = [
        f"{doc.relative_to(files.ROOT)}:{n}"
        for doc in docs
        for n, line in enumerate(doc.read_text().splitlines(), 1)
        if re.search(r"grafana\S*:3001|:3001\b", line, re.I)
    ]
    assert not wrong, f"Grafana is at https://<host>/grafana/, not on port 3001: {wrong}"


# Keys of the grafana.ini sections used, from Grafana 12's conf/defaults.ini. Grafana ignores an
# unknown key silently, so a misspelt security setting would simply not apply: catch it here.
GRAFANA_KEYS: dict[str, set[str]] = {
    "server": {
        "protocol",
        "http_addr",
        "http_port",
        "domain",
        "enforce_domain",
        "root_url",
        "serve_from_sub_path",
        "router_logging",
        "static_root_path",
        "enable_gzip",
        "cert_file",
        "cert_key",
        "read_timeout",
    },
    "paths": {"data", "temp_data_lifetime", "logs", "plugins", "provisioning"},
    "security": {
        "disable_initial_admin_creation",
        "admin_user",
        "admin_password",
        "admin_email",
        "secret_key",
        "encryption_provider",
        "disable_gravatar",
        "data_source_proxy_whitelist",
        "disable_brute_force_login_protection",
        "cookie_secure",
        "cookie_samesite",
        "allow_embedding",
        "strict_transport_security",
        "strict_transport_security_max_age_seconds",
        "strict_transport_security_preload",
        "strict_transport_security_subdomains",
        "x_content_type_options",
        "x_xss_protection",
        "content_security_policy",
        "content_security_policy_template",
        "angular_support_enabled",
        "csrf_trusted_origins",
        "login_cookie_name",
    },
    "users": {
        "allow_sign_up",
        "allow_org_create",
        "auto_assign_org",
        "auto_assign_org_id",
        "auto_assign_org_role",
        "verify_email_enabled",
        "login_hint",
        "password_hint",
        "default_theme",
        "default_language",
        "home_page",
        "viewers_can_edit",
        "editors_can_admin",
        "user_invite_max_lifetime_duration",
        "hidden_users",
    },
    "auth": {
        "login_cookie_name",
        "login_maximum_inactive_lifetime_duration",
        "login_maximum_lifetime_duration",
        "token_rotation_interval_minutes",
        "disable_login_form",
        "disable_signout_menu",
        "signout_redirect_url",
        "oauth_auto_login",
        "disable_login",
    },
    "auth.anonymous": {"enabled", "org_name", "org_role", "hide_version", "device_limit"},
    "auth.basic": {"enabled", "password_policy"},
    "smtp": {
        "enabled",
        "host",
        "user",
        "password",
        "cert_file",
        "key_file",
        "skip_verify",
        "from_address",
        "from_name",
        "ehlo_identity",
        "startTLS_policy",
        "enable_tracing",
    },
    "dashboards": {"versions_to_keep", "min_refresh_interval", "default_home_dashboard_path"},
    "analytics": {
        "reporting_enabled",
        "check_for_updates",
        "check_for_plugin_updates",
        "feedback_links_enabled",
        "google_analytics_ua_id",
        "intercom_secret",
    },
    "news": {"news_feed_enabled"},
    "log": {"mode", "level", "filters"},
    "log.console": {"level", "format"},
    "unified_alerting": {
        "enabled",
        "disabled_orgs",
        "evaluation_timeout",
        "execute_alerts",
        "min_interval",
    },
    "explore": {"enabled"},
}


def test_grafana_ini_keys_exist_in_the_pinned_version() -> None:
    ini = configparser.ConfigParser(interpolation=None)
    ini.optionxform = str  # type: ignore[assignment,method-assign]  # keep startTLS_policy's case
    ini.read_string(files.GRAFANA_INI.read_text())
    unknown = [
        f"[{section}] {key}"
        for section in ini.sections()
        for key in ini[section]
        if key not in GRAFANA_KEYS.get(section, set())
    ]
    assert unknown == [], f"grafana.ini keys Grafana does not know: {unknown}"
