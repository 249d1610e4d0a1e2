"""Prometheus configuration and rules, checked with Debian's promtool (the same checks CI runs)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from obs_support import files, tools

SEVERITIES = {"critical", "warning", "info"}
# promtool of Debian 12 (2.42) and Debian 13 (2.53); production runs 3.5 (versions.yml)
PROMTOOLS = dict(tools.both("promtool"))
RELEASES = sorted(PROMTOOLS)


def promtool(*args: str, release: str = "debian13") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOLS[release], *args], capture_output=True, text=True, timeout=60, cwd=files.ROOT
    )


@pytest.mark.parametrize("release", RELEASES)
def test_promtool_accepts_the_config_and_finds_the_rule_files(release: str) -> None:
    result = promtool("check", "config", str(files.PROMETHEUS_CONFIG), release=release)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in files.rule_files():
        assert path.name in result.stdout, f"{path.name} is not loaded by prometheus.yml"


@pytest.mark.parametrize("release", RELEASES)
def test_promtool_accepts_the_rules(release: str) -> None:
    result = promtool("check", "rules", *map(str, files.rule_files()), release=release)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("release", RELEASES)
def test_rule_unit_tests_pass(release: str) -> None:
    tests = sorted(files.RULE_TESTS_DIR.glob("*.test.yml"))
    assert tests
    result = promtool("test", "rules", *map(str, tests), release=release)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    """The unit tests can fail: lowering the CPU threshold makes the quiet test fire."""
    rules_dir = tmp_path / "rules"
    tests_dir = tmp_path / "tests"
    shutil.copytree(files.RULES_DIR, rules_dir)
    shutil.copytree(files.RULE_TESTS_DIR, tests_dir)
    alerts = rules_dir / "alerts.yml"
    text = alerts.read_text()
    assert "instance:node_cpu_utilisation:ratio_rate5m > 0.8" in text
    alerts.write_text(text.replace("ratio_rate5m > 0.8", "ratio_rate5m > 0.3"))
    result = promtool("test", "rules", *map(str, sorted(tests_dir.glob("*.test.yml"))))
    assert result.returncode != 0
    assert "HostHighCpu stays quiet at 50 %" in result.stdout + result.stderr


def test_every_alert_has_severity_summary_description_and_runbook() -> None:
    anchors = files.markdown_anchors(files.RUNBOOK)
    alerts = files.rules("alert")
    assert len({a["alert"] for a in alerts}) >= 18
    for rule in alerts:
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        ann = rule.get("annotations", {})
        assert ann.get("summary"), f"{name}: no summary"
        assert len(ann.get("description", "")) > 40, f"{name}: description too short"
        url = ann.get("runbook_url", "")
        assert url.startswith("runbooks/alerts.md#"), f"{name}: runbook_url {url!r}"
        anchor = url.split("#", 1)[1]
        assert anchor == name.lower(), f"{name}: anchor {anchor} is not the alert's name"
        assert anchor in anchors, f"{name}: runbooks/alerts.md has no section #{anchor}"


def test_runbook_sections_say_meaning_check_and_fix() -> None:
    text = files.RUNBOOK.read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    names = {a["alert"] for a in files.rules("alert")}
    titles = {s.splitlines()[0].strip() for s in sections}
    assert names <= titles, f"alerts without a runbook section: {sorted(names - titles)}"
    for section in sections:
        title = section.splitlines()[0]
        for part in ("**Meaning.**", "**Check.**", "**Fix.**"):
            assert part in section, f"runbook section {title}: missing {part}"


def test_the_alerts_the_issue_asks_for_exist_with_their_thresholds() -> None:
    by_name: dict[str, list[dict[str, object]]] = {}
    for rule in files.rules("alert"):
        by_name.setdefault(str(rule["alert"]), []).append(rule)
    records = {r["record"]: r["expr"] for r in files.rules("record")}

    def expr(name: str) -> str:
        return " ".join(str(r["expr"]) for r in by_name[name])

    assert "> 2" in expr("ApiHighLatency")
    assert "histogram_quantile(0.95" in records["job:http_request_duration_seconds:p95"]
    assert "> 0.05" in expr("ApiHighErrorRate")
    assert "[5m]" in records["job:http_request_errors:ratio_rate5m"]
    assert "> 0.8" in expr("HostHighCpu")
    assert by_name["HostHighCpu"][0]["for"] == "10m"
    assert "> 0.9" in expr("HostHighMemory")
    assert by_name["HostHighMemory"][0]["for"] == "5m"
    assert "< 0.10" in expr("HostDiskSpaceLow")
    assert "pg_settings_max_connections" in expr("PostgresTooManyConnections")
    assert "> 0.8" in expr("PostgresTooManyConnections")
    assert 'result="failure"' in expr("TooManyFailedLogins")
    assert "[5m])) > 10" in expr("TooManyFailedLogins")
    for name in (
        "TargetDown",
        "NodeDown",
        "ContainerRestarting",
        "RedisDown",
        "ReconcilerStalled",
        "DeployRolledBack",
        "ReconcilerLastSuccessTooOld",
        "CertificateExpiringSoon",
    ):
        assert name in by_name, name


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in files.RULE_TESTS_DIR.glob("*.test.yml"):
        doc = yaml.safe_load(path.read_text())
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                (fired if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {a["alert"] for a in files.rules("alert")}
    assert names - fired == set(), f"alerts never made to fire: {sorted(names - fired)}"
    assert names - quiet == set(), f"alerts never shown quiet: {sorted(names - quiet)}"


def test_every_stack_service_with_metrics_is_scraped_per_task() -> None:
    config = files.load_yaml(files.PROMETHEUS_CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    services = files.stack_services()
    # exporters stand for nginx, postgres and redis; Prometheus scrapes itself on localhost
    # certbot only renews certificates and has no metrics
    not_scraped = {"nginx", "postgres", "redis", "migrate", "prometheus", "certbot"}
    for service in services:
        if service in not_scraped:
            continue
        assert service in jobs, f"service {service} has no scrape job"
        names = [n for sd in jobs[service].get("dns_sd_configs", []) for n in sd["names"]]
        assert f"tasks.{service}" in names, f"job {service} does not resolve every task"
        for sd in jobs[service]["dns_sd_configs"]:
            assert sd["type"] == "A", f"job {service}: A records"
            assert sd["port"], f"job {service}: no port"
    # the load-balanced service name is never a scrape target
    for job in jobs.values():
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host = target.split("://")[-1].split(":")[0].split("/")[0]
                assert host not in services or job["job_name"] == "blackbox-https", target


def test_external_labels_name_the_environment() -> None:
    config = files.load_yaml(files.PROMETHEUS_CONFIG)
    assert config["global"]["external_labels"]["environment"] == "production"
    assert config["alerting"]["alertmanagers"][0]["dns_sd_configs"][0]["names"] == [
        "tasks.alertmanager"
    ]


def test_prometheus_runs_with_the_documented_retention_by_time_and_size() -> None:
    readme = (files.OBS / "README.md").read_text()
    assert "--storage.tsdb.retention.time=30d" in readme
    assert "--storage.tsdb.retention.size=" in readme
    stack = files.load_yaml(files.ROOT / "desired-state" / "base" / "stack.yml")
    flags = [f for f in stack["services"]["prometheus"]["command"] if "retention" in f]
    assert sorted(f.split("=")[0] for f in flags) == [
        "--storage.tsdb.retention.size",
        "--storage.tsdb.retention.time",
    ], "the stack must bound Prometheus's data by time and by size"
    for flag in flags:
        assert flag in readme, f"the stack runs {flag}, the README says otherwise"


def test_blackbox_exporter_accepts_its_modules() -> None:
    exporter = shutil.which("prometheus-blackbox-exporter")
    assert exporter, "prometheus-blackbox-exporter missing: run scripts/deps.sh"
    result = subprocess.run(
        [exporter, "--config.check", f"--config.file={files.BLACKBOX_CONFIG}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    config = files.load_yaml(files.PROMETHEUS_CONFIG)
    probe = next(j for j in config["scrape_configs"] if j["job_name"] == "blackbox-https")
    modules = files.load_yaml(files.BLACKBOX_CONFIG)["modules"]
    assert probe["params"]["module"][0] in modules
