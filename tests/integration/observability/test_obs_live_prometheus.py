"""Every PromQL query of every dashboard panel and recording rule, run by a real Prometheus that
scrapes the real exporters, Nginx, Alertmanager, the API and the reconciler after real traffic.

The Prometheus here is Debian's 2.42 with the production prometheus.yml, where only the service
discovery (Swarm DNS `tasks.<service>`) is replaced by the loopback addresses of the processes the
lab started; job names, relabelling and rule files are the production ones. cAdvisor, Grafana,
Loki and Alloy cannot run on this machine: queries over their metrics must parse but cannot
return data, and the test says which ones those are.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from obs_support import files, queries, sources, traffic
from obs_support.lab import Lab

pytestmark = pytest.mark.slow

# Services whose metrics cannot exist here (no build that runs on this machine).
CANNOT_RUN = {"cadvisor": "cAdvisor has no Debian/PyPI build"}

PANEL_QUERIES = [q for q in queries.all_queries() if q.language == "promql"]


def running_jobs(lab: Lab) -> set[str]:
    targets = lab.prom_api("targets")["data"]["activeTargets"]
    return {t["labels"]["job"] for t in targets if t["health"] == "up"}


def run(lab: Lab, q: queries.Query) -> dict[str, Any]:
    if q.instant:
        return lab.prom_api("query", query=q.expr)  # type: ignore[no-any-return]
    now = time.time()
    return lab.prom_api(  # type: ignore[no-any-return]
        "query_range", query=q.expr, start=str(now - 120), end=str(now), step="2"
    )


def test_scrape_jobs_are_the_production_ones(monitoring_lab: Lab) -> None:
    prod = {j["job_name"] for j in files.load_yaml(files.PROMETHEUS_CONFIG)["scrape_configs"]}
    live = {t["labels"]["job"] for t in monitoring_lab.prom_api("targets")["data"]["activeTargets"]}
    assert live <= prod
    expected_here = {
        "prometheus",
        "node-exporter",
        "postgres-exporter",
        "redis-exporter",
        "nginx-exporter",
        "blackbox-exporter",
        "blackbox-https",
        "alertmanager",
    }
    assert expected_here <= running_jobs(monitoring_lab)


def test_rules_load_and_evaluate_without_errors(monitoring_lab: Lab) -> None:
    groups = monitoring_lab.prom_api("rules")["data"]["groups"]
    loaded = {r.get("name") for g in groups for r in g["rules"]}
    expected = {
        r.get("record") or r.get("alert") for r in files.rules("record") + files.rules("alert")
    }
    assert expected <= loaded
    failing = [
        (r["name"], r.get("lastError"))
        for g in groups
        for r in g["rules"]
        if r.get("health") == "err"
    ]
    assert failing == []


@pytest.mark.parametrize("query", PANEL_QUERIES, ids=lambda q: q.source)
def test_query_parses_and_returns_data_when_its_source_runs(
    monitoring_lab: Lab, query: queries.Query
) -> None:
    result = run(monitoring_lab, query)
    assert result["status"] == "success", f"{query.expr}\n{result.get('error')}"
    needed = sources.sources(query.expr)
    if " / annotation " in query.source:
        return  # annotations mark events (a new revision, a rollback): empty until one happens
    if query.source.startswith("alert rule"):
        return  # alert expressions return series only while the alert fires; promtool tests them
    missing = needed - running_jobs(monitoring_lab)
    if missing:
        absent = set(CANNOT_RUN)
        if not traffic.api_available():
            absent.add("api")
        if not traffic.reconciler_available():
            absent.add("reconciler")
        assert missing <= absent, f"{query.source}: {sorted(missing - absent)} should run here"
        pytest.skip(f"source not running here: {', '.join(sorted(missing))}")
    assert result["data"]["result"], (
        f"{query.source} returned no data although {sorted(needed)} run:\n{query.expr}"
    )


def test_template_variables_find_values(monitoring_lab: Lab) -> None:
    running = running_jobs(monitoring_lab)
    checked = 0
    for dashboard, name, text in queries.variable_queries():
        selector, _, label = text.removeprefix("label_values(").removesuffix(")").rpartition(",")
        label = label.strip()
        result = monitoring_lab.prom_api("series", **{"match[]": selector.strip()})
        assert result["status"] == "success", f"{dashboard} ${name}: {result.get('error')}"
        if not sources.sources(selector) <= running:
            continue
        values = {s.get(label) for s in result["data"]}
        assert values - {None}, f"{dashboard} ${name}: no value of {label} in {selector}"
        checked += 1
    assert checked >= 1


def test_recording_rules_produce_series_for_running_sources(monitoring_lab: Lab) -> None:
    running = running_jobs(monitoring_lab)
    for rule in files.rules("record"):
        if not sources.sources(rule["expr"]) <= running:
            continue
        result = monitoring_lab.prom_api("query", query=rule["record"])
        assert result["data"]["result"], f"{rule['record']} has no series"


def test_the_blackbox_probe_reads_the_certificate(monitoring_lab: Lab) -> None:
    result = monitoring_lab.prom_api(
        "query", query="(probe_ssl_earliest_cert_expiry - time()) / 86400"
    )["data"]["result"]
    assert result, "no certificate expiry from the HTTPS probe"
    days = float(result[0]["value"][1])
    assert 29 < days <= 30  # the lab's certificate is valid for 30 days
    success = monitoring_lab.prom_api("query", query="probe_success")["data"]["result"]
    assert [s["value"][1] for s in success] == ["1"]


def test_prometheus_sends_alerts_to_the_alertmanager(monitoring_lab: Lab) -> None:
    active = monitoring_lab.prom_api("alertmanagers")["data"]["activeAlertmanagers"]
    assert [a["url"] for a in active] == [
        f"http://{monitoring_lab.targets['alertmanager'][0]}/api/v2/alerts"
    ]


def test_each_api_replica_is_its_own_target(monitoring_lab: Lab) -> None:
    if "api" not in monitoring_lab.targets:
        pytest.skip("the API is not installed in this checkout")
    up = monitoring_lab.prom_api("query", query='up{job="api"}')["data"]["result"]
    instances = sorted(r["metric"]["instance"] for r in up)
    assert instances == sorted(monitoring_lab.targets["api"])
    assert len(instances) == 2
    per_replica = monitoring_lab.prom_api(
        "query", query='sum by (instance) (rate(http_requests_total{job="api"}[1m]))'
    )["data"]["result"]
    assert len(per_replica) == 2, "Nginx spreads the traffic over both replicas"
    assert all(float(r["value"][1]) > 0 for r in per_replica)


def test_api_series_per_replica_stay_bounded(monitoring_lab: Lab) -> None:
    """Every route was exercised (tests/obs_support/traffic.py); labels are route templates."""
    if "api" not in monitoring_lab.targets:
        pytest.skip("the API is not installed in this checkout")
    result = monitoring_lab.prom_api(
        "query", query='scrape_samples_post_metric_relabeling{job="api"}'
    )["data"]["result"]
    counts = {r["metric"]["instance"]: float(r["value"][1]) for r in result}
    assert len(counts) == 2
    assert all(0 < n < 2000 for n in counts.values()), counts
    routes = monitoring_lab.prom_api("label/route/values", **{"match[]": "http_requests_total"})
    assert not [r for r in routes["data"] if r[0] == "/" and any(c.isdigit() for c in r)], (
        "raw paths with ids leaked into the route label"
    )


def test_real_failed_logins_fire_the_alert_and_reach_slack(monitoring_lab: Lab) -> None:
    """15 wrong passwords sent to the real API (traffic.drive) -> api_login_attempts_total ->
    the TooManyFailedLogins rule -> Alertmanager -> the Slack and Discord webhooks."""
    if "api" not in monitoring_lab.targets:
        pytest.skip("the API is not installed in this checkout")
    from obs_support import lab as lab_module

    def firing() -> bool:
        result = monitoring_lab.prom_api(
            "query", query='ALERTS{alertname="TooManyFailedLogins", alertstate="firing"}'
        )["data"]["result"]
        return bool(result)

    lab_module.wait_until("TooManyFailedLogins firing", firing, timeout=30)
    sink = monitoring_lab.sink
    assert sink is not None

    def delivered() -> bool:
        paths = {p for p, body in sink.requests if "TooManyFailedLogins" in str(body)}
        return {"/slack", "/discord"} <= paths

    lab_module.wait_until("TooManyFailedLogins on Slack and Discord", delivered, timeout=30)


def test_backup_metrics_of_a_real_run_reach_prometheus_and_the_alerts(monitoring_lab: Lab) -> None:
    """scripts/backup.sh ran as the nightly unit does (Lab.run_backups: a good PostgreSQL backup,
    a Grafana backup that failed); the node exporter's textfile collector hands its metrics to
    Prometheus, and the backup alerts' PromQL reads them as intended."""
    dump = monitoring_lab.backups["postgres"]

    def values(query: str) -> dict[str, float]:
        result = monitoring_lab.prom_api("query", query=query)
        assert result["status"] == "success", f"{query}: {result.get('error')}"
        return {s["metric"].get("kind", ""): float(s["value"][1]) for s in result["data"]["result"]}

    assert values("node_textfile_scrape_error") == {"": 0.0}
    assert values('driftless_backup_last_success_timestamp_seconds{job="node-exporter"}') == {
        "postgres": float(int(dump.stat().st_mtime))
    }
    assert values("driftless_backup_size_bytes") == {"postgres": float(dump.stat().st_size)}
    assert values("driftless_backup_last_run_success") == {"postgres": 1.0, "grafana": 0.0}
    ran = values("driftless_backup_last_run_timestamp_seconds")
    assert set(ran) == {"postgres", "grafana"}
    assert all(time.time() - 3600 < at <= time.time() for at in ran.values())

    alerts = {str(r["alert"]): str(r["expr"]) for r in files.rules("alert")}
    assert set(values(alerts["BackupFailed"])) == {"grafana"}
    assert values(alerts["BackupTooOld"]) == {}  # the postgres backup is minutes old
    assert set(values(alerts["BackupMissing"])) == {"grafana"}  # never a good Grafana backup
