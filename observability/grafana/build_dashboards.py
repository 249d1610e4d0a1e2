"""Build the Grafana dashboards in observability/grafana/dashboards/ from this one description.

    python observability/grafana/build_dashboards.py          # rewrite the JSON files
    python observability/grafana/build_dashboards.py --check  # exit 1 if a file is out of date

The JSON files are what Grafana provisions and what is reviewed; this script keeps the five of them
consistent (fixed uids, one data source uid per kind, a unit and a description on every panel,
LogQL and PromQL written once). Edit here, run it, commit both.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"

PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}

API = 'job="api"'
API_I = 'job="api", instance=~"$instance"'
RATE = "$__rate_interval"


@dataclass
class Q:
    """One query of a panel."""

    expr: str
    legend: str = ""
    instant: bool = False
    interval: str = ""


@dataclass
class P:
    """One panel."""

    title: str
    description: str
    unit: str
    queries: list[Q]
    kind: str = "timeseries"
    w: int = 12
    h: int = 8
    loki: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    thresholds: list[tuple[float | None, str]] | None = None
    decimals: int | None = None
    mappings: list[dict[str, Any]] = field(default_factory=list)
    transformations: list[dict[str, Any]] = field(default_factory=list)
    min: float | None = None
    max: float | None = None


@dataclass
class Row:
    title: str


def _query_var(name: str, label: str, query: str, *, loki: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": LOKI if loki else PROM,
        "query": {"query": query, "refId": f"{name}-var"},
        "definition": query,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "refresh": 2,
        "sort": 1,
        "hide": 0,
        "options": [],
    }


def _panel(p: P, pid: int, x: int, y: int) -> dict[str, Any]:
    ds = LOKI if p.loki else PROM
    targets = []
    for i, q in enumerate(p.queries):
        t: dict[str, Any] = {
            "refId": chr(ord("A") + i),
            "datasource": ds,
            "expr": q.expr,
            "legendFormat": q.legend,
        }
        if p.loki:
            t["queryType"] = "range" if not q.instant else "instant"
        else:
            t["range"] = not q.instant
            t["instant"] = q.instant
        if q.interval:
            t["interval"] = q.interval
        targets.append(t)
    steps = [{"color": "green", "value": None}]
    if p.thresholds:
        steps = [{"color": c, "value": v} for v, c in p.thresholds]
    defaults: dict[str, Any] = {
        "unit": p.unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "mappings": p.mappings,
        "color": {"mode": "palette-classic" if p.kind == "timeseries" else "thresholds"},
    }
    if p.decimals is not None:
        defaults["decimals"] = p.decimals
    if p.min is not None:
        defaults["min"] = p.min
    if p.max is not None:
        defaults["max"] = p.max
    custom = dict(p.custom)
    if p.kind == "timeseries":
        custom = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            **custom,
        }
    if custom:
        defaults["custom"] = custom
    options = dict(p.options)
    if p.kind == "timeseries":
        options.setdefault(
            "legend", {"displayMode": "list", "placement": "bottom", "showLegend": True}
        )
        options.setdefault("tooltip", {"mode": "multi", "sort": "desc"})
    elif p.kind == "stat":
        options.setdefault(
            "reduceOptions", {"calcs": ["lastNotNull"], "fields": "", "values": False}
        )
        options.setdefault("colorMode", "value")
        options.setdefault("graphMode", "area")
    elif p.kind == "bargauge":
        options.setdefault(
            "reduceOptions", {"calcs": ["lastNotNull"], "fields": "", "values": False}
        )
        options.setdefault("orientation", "horizontal")
        options.setdefault("displayMode", "gradient")
    elif p.kind == "piechart":
        options.setdefault(
            "reduceOptions", {"calcs": ["lastNotNull"], "fields": "", "values": False}
        )
        options.setdefault("pieType", "donut")
        options.setdefault(
            "legend",
            {
                "displayMode": "table",
                "placement": "right",
                "showLegend": True,
                "values": ["percent"],
            },
        )
    elif p.kind == "logs":
        options.setdefault("showTime", True)
        options.setdefault("wrapLogMessage", True)
        options.setdefault("sortOrder", "Descending")
        options.setdefault("enableLogDetails", True)
    panel: dict[str, Any] = {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": ds,
        "gridPos": {"h": p.h, "w": p.w, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }
    if p.transformations:
        panel["transformations"] = p.transformations
    return panel


def dashboard(
    uid: str,
    title: str,
    description: str,
    tags: list[str],
    items: list[P | Row],
    *,
    variables: list[dict[str, Any]] | None = None,
    annotations: list[dict[str, Any]] | None = None,
    time_from: str = "now-6h",
) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    x = y = 0
    row_h = 0
    pid = 1
    for item in items:
        if isinstance(item, Row):
            if x:
                y += row_h
                x, row_h = 0, 0
            panels.append(
                {
                    "id": pid,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                    "panels": [],
                }
            )
            pid += 1
            y += 1
            continue
        if x + item.w > 24:
            y += row_h
            x, row_h = 0, 0
        panels.append(_panel(item, pid, x, y))
        pid += 1
        x += item.w
        row_h = max(row_h, item.h)
    builtin = {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }
    return {
        "id": None,
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["driftless", *tags],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [
            {
                "type": "dashboards",
                "tags": ["driftless"],
                "asDropdown": True,
                "title": "Driftless",
                "includeVars": False,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "annotations": {"list": [builtin, *(annotations or [])]},
        "templating": {"list": variables or []},
        "panels": panels,
    }


DEPLOY_ANNOTATIONS = [
    {
        "name": "Deployments",
        "datasource": PROM,
        "enable": True,
        "hide": False,
        "iconColor": "#5794F2",
        "expr": "max by (environment, revision) (reconciler_applied_revision_info)"
        " unless max by (environment, revision) (reconciler_applied_revision_info offset 2m)",
        "step": "1m",
        "titleFormat": "Deployed",
        "textFormat": "{{environment}}: revision {{revision}}",
        "tagKeys": "environment",
        "useValueForTime": False,
    },
    {
        "name": "Rollbacks",
        "datasource": PROM,
        "enable": True,
        "hide": False,
        "iconColor": "#F2495C",
        "expr": "sum by (environment) (increase(reconciler_rollbacks_total[2m])) > 0",
        "step": "1m",
        "titleFormat": "Rolled back",
        "textFormat": "{{environment}}: the reconciler rolled a deployment back",
        "tagKeys": "environment",
        "useValueForTime": False,
    },
]

INSTANCE_VAR = _query_var("instance", "Replica", 'label_values(up{job="api"}, instance)')
ROUTE_VAR = _query_var("route", "Route", 'label_values(http_requests_total{job="api"}, route)')


def api_dashboard() -> dict[str, Any]:
    pct = [(None, "green"), (0.01, "yellow"), (0.05, "red")]
    items: list[P | Row] = [
        Row("Overview"),
        P(
            "Request rate",
            "Requests per second over the last 5 minutes, all replicas.",
            "reqps",
            [Q(f"sum(job:http_requests:rate5m{{{API}}})")],
            kind="stat",
            w=4,
            h=4,
        ),
        P(
            "Error ratio (5xx)",
            "Share of responses that were server errors over 5 minutes. "
            "Alert ApiHighErrorRate fires above 5 %.",
            "percentunit",
            [Q(f"sum(job:http_request_errors:ratio_rate5m{{{API}}})")],
            kind="stat",
            w=4,
            h=4,
            thresholds=pct,
            decimals=2,
        ),
        P(
            "p95 latency",
            "95th percentile of response time over 5 minutes. Alert "
            "ApiHighLatency fires above 2 s.",
            "s",
            [Q(f"max(job:http_request_duration_seconds:p95{{{API}}})")],
            kind="stat",
            w=4,
            h=4,
            thresholds=[(None, "green"), (0.5, "yellow"), (2, "red")],
        ),
        P(
            "Active users",
            "Signed-in users seen in the last 5 minutes (api_active_users).",
            "short",
            [Q(f"max(api_active_users{{{API}}})")],
            kind="stat",
            w=4,
            h=4,
        ),
        P(
            "Requests in flight",
            "Requests being served right now, summed over the selected replicas.",
            "short",
            [Q(f"sum(http_requests_in_flight{{{API_I}}})")],
            kind="stat",
            w=4,
            h=4,
        ),
        P(
            "Replicas up",
            "API tasks that Prometheus scraped successfully (one target per Swarm task).",
            "short",
            [Q(f"sum(up{{{API}}})")],
            kind="stat",
            w=4,
            h=4,
            thresholds=[(None, "red"), (1, "yellow"), (2, "green")],
        ),
        Row("Traffic"),
        P(
            "Request rate by route",
            "Requests per second per route template, 5-minute rate.",
            "reqps",
            [
                Q(
                    f'sum by (route) (job_route:http_requests:rate5m{{{API}, route=~"$route"}})',
                    "{{route}}",
                )
            ],
        ),
        P(
            "Requests per replica",
            "Requests per second served by each API task: the load balancing across replicas.",
            "reqps",
            [
                Q(
                    f"sum by (instance) (rate(http_requests_total{{{API_I}}}[{RATE}]))",
                    "{{instance}}",
                )
            ],
        ),
        P(
            "Status codes",
            "Share of responses by HTTP status code over the last 5 minutes.",
            "reqps",
            [Q(f"sum by (status) (job_status:http_requests:rate5m{{{API}}})", "{{status}}")],
            kind="piechart",
            w=8,
        ),
        P(
            "Top routes",
            "The ten routes with the most requests in the selected time range.",
            "short",
            [
                Q(
                    f"topk(10, sum by (route) (increase(http_requests_total{{{API_I}}}"
                    "[$__range])))",
                    "{{route}}",
                    instant=True,
                )
            ],
            kind="bargauge",
            w=8,
        ),
        P(
            "Concurrent active users",
            "Signed-in users seen in the last 5 minutes, over time.",
            "short",
            [Q(f"max(api_active_users{{{API}}})", "active users")],
            w=8,
        ),
        Row("Latency"),
        P(
            "Latency percentiles",
            "p50, p95 and p99 of response time over all routes "
            "(recording rules over 5-minute bucket rates).",
            "s",
            [
                Q(f"max(job:http_request_duration_seconds:p50{{{API}}})", "p50"),
                Q(f"max(job:http_request_duration_seconds:p95{{{API}}})", "p95"),
                Q(f"max(job:http_request_duration_seconds:p99{{{API}}})", "p99"),
            ],
        ),
        P(
            "p95 latency by route",
            "95th percentile of response time per route template.",
            "s",
            [
                Q(
                    f'job_route:http_request_duration_seconds:p95{{{API}, route=~"$route"}}',
                    "{{route}}",
                )
            ],
        ),
        P(
            "p99 latency by route",
            "99th percentile of response time per route template: the slowest requests users see.",
            "s",
            [
                Q(
                    f'job_route:http_request_duration_seconds:p99{{{API}, route=~"$route"}}',
                    "{{route}}",
                )
            ],
        ),
        P(
            "Mean latency",
            "Average response time (sum of durations over count), all routes.",
            "s",
            [Q(f"max(job:http_request_duration_seconds:mean_rate5m{{{API}}})", "mean")],
        ),
        Row("Errors"),
        P(
            "Error ratio by route",
            "Share of 5xx responses per route over 5 minutes.",
            "percentunit",
            [
                Q(
                    f'job_route:http_request_errors:ratio_rate5m{{{API}, route=~"$route"}}',
                    "{{route}}",
                )
            ],
            thresholds=pct,
        ),
        P(
            "Responses by status class",
            "Responses per second grouped by status class (2xx, 3xx, 4xx, 5xx).",
            "reqps",
            [
                Q(
                    'sum by (class) (label_replace(rate(http_requests_total{job="api", '
                    f'instance=~"$instance"}}[{RATE}]), "class", "${{1}}xx", "status", "(.).."))',
                    "{{class}}",
                )
            ],
        ),
        Row("Saturation"),
        P(
            "Requests in flight per replica",
            "Concurrent requests per API task.",
            "short",
            [Q(f"sum by (instance) (http_requests_in_flight{{{API_I}}})", "{{instance}}")],
        ),
        P(
            "Cache hit ratio",
            "Share of cache lookups that were hits, per cache.",
            "percentunit",
            [
                Q(
                    "sum by (cache) (rate(api_cache_requests_total"
                    f'{{{API}, result="hit"}}[{RATE}]))'
                    f" / sum by (cache) (rate(api_cache_requests_total{{{API}}}[{RATE}]))",
                    "{{cache}}",
                )
            ],
            min=0,
            max=1,
        ),
        P(
            "Running version",
            "Version, revision and image tag each replica reports (api_build_info).",
            "short",
            [
                Q(
                    f"count by (version, revision, image_tag) (api_build_info{{{API}}})",
                    "{{version}} {{revision}} {{image_tag}}",
                    instant=True,
                )
            ],
            kind="table",
            w=24,
            h=5,
        ),
    ]
    return dashboard(
        "driftless-api",
        "API performance",
        "Request rate, latency, errors and saturation of the shop API, per route and replica. "
        "Deploy and rollback annotations come from the reconciler.",
        ["api"],
        items,
        variables=[INSTANCE_VAR, ROUTE_VAR],
        annotations=DEPLOY_ANNOTATIONS,
    )


NODE = 'instance=~"$node"'
REAL_FS = 'fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs|fuse.*"'
NET_DEV = 'device!~"lo|veth.*|docker.*|br-.*|vx-.*"'


def system_dashboard() -> dict[str, Any]:
    node_var = _query_var("node", "Node", "label_values(node_uname_info, instance)")
    service_var = _query_var(
        "service", "Service", "label_values(container_start_time_seconds, service)"
    )
    items: list[P | Row] = [
        Row("Host"),
        P(
            "CPU utilisation",
            "Share of CPU time not idle, 5-minute average over all cores. "
            "Alert HostHighCpu fires above 80 % for 10 minutes.",
            "percentunit",
            [Q(f"instance:node_cpu_utilisation:ratio_rate5m{{{NODE}}}", "{{instance}}")],
            kind="stat",
            w=6,
            h=4,
            thresholds=[(None, "green"), (0.7, "yellow"), (0.8, "red")],
        ),
        P(
            "Memory utilisation",
            "Share of memory not available to new processes. Alert "
            "HostHighMemory fires above 90 % for 5 minutes.",
            "percentunit",
            [Q(f"instance:node_memory_utilisation:ratio{{{NODE}}}", "{{instance}}")],
            kind="stat",
            w=6,
            h=4,
            thresholds=[(None, "green"), (0.8, "yellow"), (0.9, "red")],
        ),
        P(
            "Lowest free space",
            "Free space of the fullest real filesystem. Alert HostDiskSpaceLow fires below 10 %.",
            "percentunit",
            [Q(f"min(instance_mountpoint:node_filesystem_avail:ratio{{{NODE}}})")],
            kind="stat",
            w=6,
            h=4,
            thresholds=[(None, "red"), (0.1, "yellow"), (0.2, "green")],
        ),
        P(
            "Uptime",
            "Time since the node booted.",
            "s",
            [Q(f"time() - node_boot_time_seconds{{{NODE}}}", "{{instance}}")],
            kind="stat",
            w=6,
            h=4,
        ),
        P(
            "CPU by mode",
            "CPU time per mode (user, system, iowait, ...) as a share of all cores.",
            "percentunit",
            [
                Q(
                    f'avg by (mode) (rate(node_cpu_seconds_total{{{NODE}, mode!="idle"}}[{RATE}]))',
                    "{{mode}}",
                )
            ],
            custom={"stacking": {"mode": "normal", "group": "A"}},
        ),
        P(
            "Load average",
            "1, 5 and 15-minute load averages (runnable processes).",
            "short",
            [
                Q(f"node_load1{{{NODE}}}", "1m {{instance}}"),
                Q(f"node_load5{{{NODE}}}", "5m {{instance}}"),
                Q(f"node_load15{{{NODE}}}", "15m {{instance}}"),
            ],
        ),
        P(
            "Memory and swap",
            "Used and available memory, and swap in use.",
            "bytes",
            [
                Q(
                    f"node_memory_MemTotal_bytes{{{NODE}}}"
                    f" - node_memory_MemAvailable_bytes{{{NODE}}}",
                    "used {{instance}}",
                ),
                Q(f"node_memory_MemAvailable_bytes{{{NODE}}}", "available {{instance}}"),
                Q(
                    f"node_memory_SwapTotal_bytes{{{NODE}}} - node_memory_SwapFree_bytes{{{NODE}}}",
                    "swap used {{instance}}",
                ),
            ],
        ),
        P(
            "Free space per filesystem",
            "Free share of each real filesystem (tmpfs and overlay excluded).",
            "percentunit",
            [
                Q(
                    f"instance_mountpoint:node_filesystem_avail:ratio{{{NODE}}}",
                    "{{mountpoint}} ({{instance}})",
                )
            ],
            kind="bargauge",
            thresholds=[(None, "red"), (0.1, "yellow"), (0.2, "green")],
            min=0,
            max=1,
        ),
        P(
            "Disk throughput",
            "Bytes read and written per second per block device.",
            "Bps",
            [
                Q(
                    f"sum by (device) (rate(node_disk_read_bytes_total{{{NODE}}}[{RATE}]))",
                    "read {{device}}",
                ),
                Q(
                    f"sum by (device) (rate(node_disk_written_bytes_total{{{NODE}}}[{RATE}]))",
                    "write {{device}}",
                ),
            ],
        ),
        P(
            "Disk busy time",
            "Share of time each block device was busy with I/O.",
            "percentunit",
            [
                Q(
                    f"sum by (device) (rate(node_disk_io_time_seconds_total{{{NODE}}}[{RATE}]))",
                    "{{device}}",
                )
            ],
        ),
        P(
            "Network traffic",
            "Bytes received and sent per second on physical interfaces.",
            "Bps",
            [
                Q(
                    f"sum by (device) (rate(node_network_receive_bytes_total{{{NODE}, {NET_DEV}}}"
                    f"[{RATE}]))",
                    "in {{device}}",
                ),
                Q(
                    f"sum by (device) (rate(node_network_transmit_bytes_total{{{NODE}, {NET_DEV}}}"
                    f"[{RATE}]))",
                    "out {{device}}",
                ),
            ],
        ),
        P(
            "Network errors",
            "Receive and transmit errors per second.",
            "pps",
            [
                Q(
                    f"sum by (device) (rate(node_network_receive_errs_total{{{NODE}}}[{RATE}]))"
                    " + sum by (device) (rate(node_network_transmit_errs_total"
                    f"{{{NODE}}}[{RATE}]))",
                    "{{device}}",
                )
            ],
        ),
        Row("Containers"),
        P(
            "Containers running per service",
            "Running containers of each Swarm service (cAdvisor).",
            "short",
            [
                Q(
                    'count by (service) (container_start_time_seconds{service=~"$service"})',
                    "{{service}}",
                )
            ],
        ),
        P(
            "Containers started in the last 15 minutes",
            "New containers per service: more "
            "than the replica count means restarts (alert ContainerRestarting).",
            "short",
            [
                Q(
                    "count by (service) (max_over_time(container_start_time_seconds"
                    '{service=~"$service"}[15m]) > time() - 900)',
                    "{{service}}",
                )
            ],
        ),
        P(
            "Replicas running vs desired",
            "Running and desired replicas per service as the reconciler sees them.",
            "short",
            [
                Q("sum by (service) (reconciler_service_replicas_running)", "running {{service}}"),
                Q("sum by (service) (reconciler_service_replicas_desired)", "desired {{service}}"),
            ],
        ),
        P(
            "CPU by service",
            "CPU used by the containers of each service (1 = one core).",
            "percentunit",
            [
                Q(
                    "sum by (service) (rate(container_cpu_usage_seconds_total"
                    f'{{service=~"$service"}}[{RATE}]))',
                    "{{service}}",
                )
            ],
        ),
        P(
            "Memory by service",
            "Working-set memory of the containers of each service.",
            "bytes",
            [
                Q(
                    'sum by (service) (container_memory_working_set_bytes{service=~"$service"})',
                    "{{service}}",
                )
            ],
        ),
        P(
            "Scrape targets up",
            "Targets per job that answered their last scrape.",
            "short",
            [Q("sum by (job) (up)", "{{job}}", instant=True)],
            kind="bargauge",
        ),
        Row("PostgreSQL"),
        P(
            "Connections",
            "Backends connected per database, against max_connections. Alert "
            "PostgresTooManyConnections fires above 80 %.",
            "short",
            [
                Q(
                    'sum by (datname) (pg_stat_database_numbackends{datname!~"template.*"})',
                    "{{datname}}",
                ),
                Q("max(pg_settings_max_connections)", "max_connections"),
            ],
        ),
        P(
            "Connection use",
            "Share of max_connections in use.",
            "percentunit",
            [Q("sum(pg_stat_database_numbackends) / max(pg_settings_max_connections)")],
            kind="stat",
            w=6,
            thresholds=[(None, "green"), (0.6, "yellow"), (0.8, "red")],
        ),
        P(
            "Cache hit ratio",
            "Share of block reads served from shared buffers.",
            "percentunit",
            [
                Q(
                    f"sum(rate(pg_stat_database_blks_hit[{RATE}])) / (sum(rate(pg_stat_database_"
                    f"blks_hit[{RATE}])) + sum(rate(pg_stat_database_blks_read[{RATE}])))"
                )
            ],
            kind="stat",
            w=6,
            thresholds=[(None, "red"), (0.9, "yellow"), (0.99, "green")],
        ),
        P(
            "Transactions",
            "Commits and rollbacks per second per database.",
            "ops",
            [
                Q(
                    f'sum by (datname) (rate(pg_stat_database_xact_commit{{datname!~"template.*"}}'
                    f"[{RATE}]))",
                    "commit {{datname}}",
                ),
                Q(
                    "sum by (datname) (rate(pg_stat_database_xact_rollback"
                    '{datname!~"template.*"}'
                    f"[{RATE}]))",
                    "rollback {{datname}}",
                ),
            ],
        ),
        P(
            "Longest running transaction",
            "Age of the oldest active transaction per database: "
            "slow queries and stuck sessions show here.",
            "s",
            [
                Q(
                    'max by (datname) (pg_stat_activity_max_tx_duration{datname!~"template.*"})',
                    "{{datname}}",
                )
            ],
        ),
        P(
            "Rows and deadlocks",
            "Rows fetched, inserted and updated per second, and deadlocks.",
            "ops",
            [
                Q(f"sum(rate(pg_stat_database_tup_fetched[{RATE}]))", "fetched"),
                Q(f"sum(rate(pg_stat_database_tup_inserted[{RATE}]))", "inserted"),
                Q(f"sum(rate(pg_stat_database_tup_updated[{RATE}]))", "updated"),
                Q(f"sum(rate(pg_stat_database_deadlocks[{RATE}]))", "deadlocks"),
            ],
        ),
        Row("Redis and Nginx"),
        P(
            "Redis clients and memory",
            "Connected clients and used memory.",
            "short",
            [Q("sum(redis_connected_clients)", "clients")],
            w=6,
        ),
        P(
            "Redis memory",
            "Memory used by Redis.",
            "bytes",
            [Q("sum(redis_memory_used_bytes)", "used")],
            w=6,
        ),
        P(
            "Redis commands",
            "Commands processed per second.",
            "ops",
            [Q(f"sum(rate(redis_commands_processed_total[{RATE}]))", "commands")],
            w=6,
        ),
        P(
            "Redis hit ratio",
            "Share of key lookups that found the key.",
            "percentunit",
            [
                Q(
                    f"sum(rate(redis_keyspace_hits_total[{RATE}])) / (sum(rate(redis_keyspace_hits_"
                    f"total[{RATE}])) + sum(rate(redis_keyspace_misses_total[{RATE}])))",
                    "hit ratio",
                )
            ],
            w=6,
            min=0,
            max=1,
        ),
        P(
            "Nginx connections",
            "Active, reading, writing and waiting client connections (stub_status).",
            "short",
            [
                Q(
                    'sum by (state) (label_replace(nginx_connections_active, "state", "active", '
                    '"", ""))',
                    "{{state}}",
                ),
                Q("sum(nginx_connections_waiting)", "waiting"),
            ],
        ),
        P(
            "Nginx requests",
            "Requests per second Nginx handled (all virtual hosts).",
            "reqps",
            [Q(f"sum(rate(nginx_http_requests_total[{RATE}]))", "requests")],
        ),
        Row("Backups"),
        P(
            "Age of the last good backup",
            "Time since the newest good backup of each kind was written (scripts/backup.sh, "
            "nightly, through the node exporter's textfile collector). Alert BackupTooOld fires "
            "above 26 hours.",
            "s",
            [
                Q(
                    "time() - max by (kind) (driftless_backup_last_success_timestamp_seconds)",
                    "{{kind}}",
                )
            ],
            kind="stat",
            w=8,
            thresholds=[(None, "green"), (26 * 3600, "red")],
            options={"textMode": "value_and_name", "graphMode": "none"},
        ),
        P(
            "Last backup run",
            "Whether the last backup run of each kind succeeded; a run that kept nothing or "
            "could not upload its backup counts as failed. Alert BackupFailed fires on a failure.",
            "none",
            [Q("min by (kind) (driftless_backup_last_run_success)", "{{kind}}")],
            kind="stat",
            w=8,
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "failed", "color": "red"},
                        "1": {"text": "succeeded", "color": "green"},
                    },
                }
            ],
            options={"textMode": "value_and_name", "colorMode": "background", "graphMode": "none"},
        ),
        P(
            "Backup size",
            "Size of the newest good backup of each kind: a sudden drop means a backup lost "
            "data, steady growth is the database growing.",
            "bytes",
            [Q("max by (kind) (driftless_backup_size_bytes)", "{{kind}}")],
            w=8,
        ),
    ]
    return dashboard(
        "driftless-system",
        "System and infrastructure",
        "The VM and its services: CPU, memory, disks, network, containers per service, "
        "PostgreSQL, Redis, Nginx and backups.",
        ["infrastructure"],
        items,
        variables=[node_var, service_var],
    )


def business_dashboard() -> dict[str, Any]:
    items: list[P | Row] = [
        Row("Users"),
        P(
            "Registrations in range",
            "New user accounts in the selected time range.",
            "short",
            [Q(f"sum(increase(api_user_registrations_total{{{API}}}[$__range]))", instant=True)],
            kind="stat",
            w=6,
            h=4,
            decimals=0,
        ),
        P(
            "Successful logins in range",
            "Logins that succeeded in the selected time range.",
            "short",
            [
                Q(
                    f'sum(increase(api_login_attempts_total{{{API}, result="success"}}[$__range]))',
                    instant=True,
                )
            ],
            kind="stat",
            w=6,
            h=4,
            decimals=0,
        ),
        P(
            "Login success ratio",
            "Share of login attempts that succeeded in the selected time range.",
            "percentunit",
            [
                Q(
                    f'sum(increase(api_login_attempts_total{{{API}, result="success"}}[$__range]))'
                    f" / sum(increase(api_login_attempts_total{{{API}}}[$__range]))",
                    instant=True,
                )
            ],
            kind="stat",
            w=6,
            h=4,
            thresholds=[(None, "red"), (0.5, "yellow"), (0.8, "green")],
        ),
        P(
            "Active users now",
            "Signed-in users seen in the last 5 minutes.",
            "short",
            [Q(f"max(api_active_users{{{API}}})")],
            kind="stat",
            w=6,
            h=4,
        ),
        P(
            "Registrations per day",
            "New accounts per day.",
            "short",
            [
                Q(
                    f"sum(increase(api_user_registrations_total{{{API}}}[1d]))",
                    "registrations",
                    interval="1d",
                )
            ],
            custom={"drawStyle": "bars", "fillOpacity": 80},
        ),
        P(
            "Login attempts vs successful logins",
            "Login attempts per minute by result (success, failure, rate_limited).",
            "opm",
            [
                Q(
                    f"sum by (result) (rate(api_login_attempts_total{{{API}}}[{RATE}])) * 60",
                    "{{result}}",
                )
            ],
        ),
        Row("Catalogue"),
        P(
            "Products created by category",
            "New products per category in the selected time range.",
            "short",
            [
                Q(
                    f"sum by (category) (increase(api_products_created_total{{{API}}}[$__range]))",
                    "{{category}}",
                    instant=True,
                )
            ],
            kind="piechart",
        ),
        P(
            "Products created over time",
            "New products per hour by category.",
            "short",
            [
                Q(
                    f"sum by (category) (increase(api_products_created_total{{{API}}}[1h]))",
                    "{{category}}",
                    interval="1h",
                )
            ],
            custom={
                "drawStyle": "bars",
                "fillOpacity": 80,
                "stacking": {"mode": "normal", "group": "A"},
            },
        ),
        Row("Audience"),
        P(
            "Requests by country",
            "Requests per country (from Nginx's X-Country-Code) in the "
            "selected time range, top 15.",
            "short",
            [
                Q(
                    f"topk(15, sum by (country) (increase(api_requests_by_country_total{{{API}}}"
                    "[$__range])))",
                    "{{country}}",
                    instant=True,
                )
            ],
            kind="bargauge",
        ),
        P(
            "Requests per hour",
            "Requests per hour: the peak hours of the day stand out.",
            "short",
            [Q(f"sum(increase(http_requests_total{{{API}}}[1h]))", "requests", interval="1h")],
            custom={"drawStyle": "bars", "fillOpacity": 80},
        ),
        P(
            "Peak request rate",
            "Highest 5-minute request rate in the selected time range.",
            "reqps",
            [Q(f"max(max_over_time(job:http_requests:rate5m{{{API}}}[$__range]))", instant=True)],
            kind="stat",
            w=6,
            h=4,
        ),
        P(
            "Traffic by country over time",
            "Requests per second for the five largest countries.",
            "reqps",
            [
                Q(
                    "topk(5, sum by (country) (job_country:api_requests_by_country:rate5m"
                    f"{{{API}}}))",
                    "{{country}}",
                )
            ],
            w=18,
            h=4,
        ),
    ]
    return dashboard(
        "driftless-business",
        "Business",
        "What the shop's users do: registrations, logins, products by category, countries "
        "and peak hours.",
        ["business"],
        items,
        time_from="now-7d",
    )


NGINX_LOGS = '{stack="driftless", service=~".+_nginx"}'
APP_ERRORS = '{stack="driftless", level=~"error|critical"}'
# the exception type on the last line of a traceback ("ValueError: ...") or of a one-line
# "ApplyError: ..." (RE2; $ is the end of the text, so only the last line can match)
EXCEPTION_TYPE = r"(?P<error_type>[A-Za-z_][A-Za-z0-9_.]*): [^\n]*\n?$"


def security_dashboard() -> dict[str, Any]:
    items: list[P | Row] = [
        Row("Authentication"),
        P(
            "Failed logins (5 min)",
            "Failed login attempts in the last 5 minutes. Alert "
            "TooManyFailedLogins fires above 10.",
            "short",
            [Q(f'sum(increase(api_login_attempts_total{{{API}, result="failure"}}[5m]))')],
            kind="stat",
            w=6,
            h=4,
            decimals=0,
            thresholds=[(None, "green"), (5, "yellow"), (10, "red")],
        ),
        P(
            "Rate-limited logins (5 min)",
            "Login attempts the API refused by rate limiting in the last 5 minutes.",
            "short",
            [Q(f'sum(increase(api_login_attempts_total{{{API}, result="rate_limited"}}[5m]))')],
            kind="stat",
            w=6,
            h=4,
            decimals=0,
        ),
        P(
            "4xx rate",
            "Client-error responses per second.",
            "reqps",
            [Q(f'sum(rate(http_requests_total{{{API}, status=~"4.."}}[{RATE}]))')],
            kind="stat",
            w=6,
            h=4,
        ),
        P(
            "5xx rate",
            "Server-error responses per second.",
            "reqps",
            [Q(f'sum(rate(http_requests_total{{{API}, status=~"5.."}}[{RATE}]))')],
            kind="stat",
            w=6,
            h=4,
            thresholds=[(None, "green"), (0.01, "red")],
        ),
        P(
            "Failed and rate-limited logins",
            "Failed and rate-limited login attempts per minute.",
            "opm",
            [
                Q(
                    f"sum by (result) (rate(api_login_attempts_total{{{API}, "
                    f'result=~"failure|rate_limited"}}[{RATE}])) * 60',
                    "{{result}}",
                )
            ],
        ),
        P(
            "4xx and 5xx by status",
            "Error responses per second by status code.",
            "reqps",
            [
                Q(
                    f'sum by (status) (rate(http_requests_total{{{API}, status=~"4..|5.."}}'
                    f"[{RATE}]))",
                    "{{status}}",
                )
            ],
        ),
        Row("Unusual traffic"),
        P(
            "Traffic against its baseline",
            "Current 5-minute request rate divided by its own "
            "average over the previous hour: 100 % is normal, spikes and drops stand out.",
            "percentunit",
            [
                # job:http_requests:rate5m is one series per job: no subquery needed
                Q(
                    f"job:http_requests:rate5m{{{API}}}"
                    f" / avg_over_time(job:http_requests:rate5m{{{API}}}[1h])",
                    "now / 1h mean",
                )
            ],
            thresholds=[(None, "green"), (2, "yellow"), (4, "red")],
        ),
        P(
            "Traffic z-score",
            "How many standard deviations the request rate is from its mean "
            "over the last day (above 3 is unusual).",
            "short",
            [
                Q(
                    f"(job:http_requests:rate5m{{{API}}}"
                    f" - avg_over_time(job:http_requests:rate5m{{{API}}}[1d]))"
                    f" / stddev_over_time(job:http_requests:rate5m{{{API}}}[1d])",
                    "z-score",
                )
            ],
            thresholds=[(None, "green"), (3, "red")],
        ),
        P(
            "Nginx requests",
            "Requests per second reaching Nginx, including those that never reach the API.",
            "reqps",
            [Q(f"sum(rate(nginx_http_requests_total[{RATE}]))", "nginx")],
        ),
        Row("Logs"),
        P(
            "Top client IPs by volume",
            "Client addresses with the most requests in the "
            "selected range, from Nginx's JSON access log (Loki).",
            "short",
            [
                Q(
                    f'topk(10, sum by (remote_addr) (count_over_time({NGINX_LOGS} |= "remote_addr"'
                    ' | json | __error__="" [$__range])))',
                    "{{remote_addr}}",
                    instant=True,
                )
            ],
            kind="bargauge",
            loki=True,
        ),
        P(
            "Client errors by IP",
            "Addresses receiving the most 4xx answers (scanners, "
            "password guessing), from the Nginx access log.",
            "short",
            [
                Q(
                    f'topk(10, sum by (remote_addr) (count_over_time({NGINX_LOGS} |= "status"'
                    ' | json | __error__="" | status >= 400 and status < 500 [$__range])))',
                    "{{remote_addr}}",
                    instant=True,
                )
            ],
            kind="bargauge",
            loki=True,
        ),
        P(
            "Error lines by logger",
            "Error and critical log lines per minute, by service and by the logger (module) "
            "that wrote them.",
            "short",
            [
                Q(
                    f'sum by (service, logger) (count_over_time({APP_ERRORS} |= "level"'
                    ' | json | __error__="" [1m]))',
                    "{{service}} {{logger}}",
                )
            ],
            loki=True,
        ),
        P(
            "Error log lines by type",
            "Error and critical lines that carry an exception, per minute, grouped by service "
            "and exception type (the last line of the traceback in the JSON field exception).",
            "short",
            [
                Q(
                    f'sum by (service, error_type) (count_over_time({APP_ERRORS} |= "exception"'
                    ' | json | exception != "" | line_format "{{.exception}}"'
                    f" | regexp `{EXCEPTION_TYPE}` [1m]))",
                    "{{service}} {{error_type}}",
                )
            ],
            loki=True,
        ),
        P(
            "Recent errors",
            "The latest error and critical log lines of every service.",
            "short",
            [Q(f'{APP_ERRORS} |= ""')],
            kind="logs",
            loki=True,
            w=24,
            h=10,
        ),
    ]
    return dashboard(
        "driftless-security",
        "Security and logs",
        "Failed logins, client and server errors, traffic against its own baseline, the "
        "busiest client addresses and error logs (Loki).",
        ["security", "logs"],
        items,
        time_from="now-24h",
    )


ENV_VAR = _query_var(
    "environment", "Environment", "label_values(reconciler_condition, environment)"
)
ENV = 'environment=~"$environment"'


def deployments_dashboard() -> dict[str, Any]:
    on_off = [
        {
            "type": "value",
            "options": {
                "0": {"text": "no", "color": "red"},
                "1": {"text": "yes", "color": "green"},
            },
        }
    ]
    items: list[P | Row] = [
        Row("Revisions"),
        P(
            "Applied revision",
            "The git revision the reconciler last applied, per environment.",
            "short",
            [
                Q(
                    f"max by (environment, revision) (reconciler_applied_revision_info{{{ENV}}})",
                    "{{environment}}: {{revision}}",
                    instant=True,
                )
            ],
            kind="stat",
            w=8,
            h=4,
            options={"textMode": "name", "colorMode": "none", "graphMode": "none"},
        ),
        P(
            "Desired revision",
            "The git revision the reconciler read from the desired state, per environment.",
            "short",
            [
                Q(
                    f"max by (environment, revision) (reconciler_desired_revision_info{{{ENV}}})",
                    "{{environment}}: {{revision}}",
                    instant=True,
                )
            ],
            kind="stat",
            w=8,
            h=4,
            options={"textMode": "name", "colorMode": "none", "graphMode": "none"},
        ),
        P(
            "Services out of sync (drift)",
            "Services whose live spec differs from git.",
            "short",
            [
                Q(
                    f"max by (environment) (reconciler_services_out_of_sync{{{ENV}}})",
                    "{{environment}}",
                )
            ],
            kind="stat",
            w=8,
            h=4,
            thresholds=[(None, "green"), (1, "red")],
        ),
        P(
            "Time since last successful pass",
            "Alert ReconcilerLastSuccessTooOld fires after 30 minutes.",
            "s",
            [
                Q(
                    f"time() - max by (environment) (reconciler_last_success_timestamp_seconds"
                    f"{{{ENV}}})",
                    "{{environment}}",
                )
            ],
            kind="stat",
            w=8,
            h=4,
            thresholds=[(None, "green"), (900, "yellow"), (1800, "red")],
        ),
        P(
            "Time since last pass",
            "When the reconciler last finished a pass of any result.",
            "s",
            [
                Q(
                    f"time() - max by (environment) (reconciler_last_pass_timestamp_seconds"
                    f"{{{ENV}}})",
                    "{{environment}}",
                )
            ],
            kind="stat",
            w=8,
            h=4,
        ),
        P(
            "Conditions",
            "The reconciler's conditions (Ready, Reconciling, Healthy, Stalled).",
            "short",
            [Q(f"max by (type) (reconciler_condition{{{ENV}}})", "{{type}}")],
            kind="stat",
            w=8,
            h=4,
            mappings=on_off,
            options={"textMode": "value_and_name", "colorMode": "background", "graphMode": "none"},
        ),
        Row("Passes"),
        P(
            "Passes by result",
            "Reconciliation passes per interval by result (success, noop, "
            "refused, failed, rolled_back, error).",
            "short",
            [
                Q(
                    f"sum by (result) (increase(reconciler_passes_total{{{ENV}}}[{RATE}]))",
                    "{{result}}",
                )
            ],
            custom={
                "drawStyle": "bars",
                "fillOpacity": 80,
                "stacking": {"mode": "normal", "group": "A"},
            },
        ),
        P(
            "Pass, apply and verify duration (p95)",
            "95th percentile of how long a pass, the apply phase and the health verification took.",
            "s",
            [
                Q(
                    f"histogram_quantile(0.95, sum by (le) (rate(reconciler_pass_duration_seconds_"
                    f"bucket{{{ENV}}}[{RATE}])))",
                    "pass",
                ),
                Q(
                    f"histogram_quantile(0.95, sum by (le) (rate(reconciler_apply_duration_seconds_"
                    f"bucket{{{ENV}}}[{RATE}])))",
                    "apply",
                ),
                Q(
                    "histogram_quantile(0.95, sum by (le) ("
                    "rate(reconciler_verify_duration_seconds_"
                    f"bucket{{{ENV}}}[{RATE}])))",
                    "verify",
                ),
            ],
        ),
        P(
            "Rollbacks and reverts",
            "Rollbacks applied and revert commits pushed in the selected range.",
            "short",
            [
                Q(
                    f"sum(increase(reconciler_rollbacks_total{{{ENV}}}[$__range]))",
                    "rollbacks",
                    instant=True,
                ),
                Q(
                    f"sum(increase(reconciler_reverts_pushed_total{{{ENV}}}[$__range]))",
                    "reverts",
                    instant=True,
                ),
            ],
            kind="stat",
            w=8,
            decimals=0,
        ),
        P(
            "Drift over time",
            "Services out of sync with git over time.",
            "short",
            [
                Q(
                    f"max by (environment) (reconciler_services_out_of_sync{{{ENV}}})",
                    "{{environment}}",
                )
            ],
            w=8,
        ),
        P(
            "Git fetch errors and quarantine",
            "Failed fetches of the desired-state repository "
            "and revisions quarantined after a failed deploy.",
            "short",
            [
                Q(
                    f"sum(increase(reconciler_git_fetch_errors_total{{{ENV}}}[$__range]))",
                    "fetch errors",
                    instant=True,
                ),
                Q(f"max(reconciler_quarantined_revisions{{{ENV}}})", "quarantined", instant=True),
            ],
            kind="stat",
            w=8,
            decimals=0,
        ),
        Row("Services"),
        P(
            "Per-service sync and health",
            "For each service: in sync with git, healthy, and running against desired replicas.",
            "short",
            [
                Q(f"max by (service) (reconciler_service_in_sync{{{ENV}}})", instant=True),
                Q(f"max by (service) (reconciler_service_healthy{{{ENV}}})", instant=True),
                Q(f"max by (service) (reconciler_service_replicas_running{{{ENV}}})", instant=True),
                Q(f"max by (service) (reconciler_service_replicas_desired{{{ENV}}})", instant=True),
            ],
            kind="table",
            w=24,
            h=8,
            transformations=[
                {"id": "joinByField", "options": {"byField": "service", "mode": "outer"}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {
                            "Time": True,
                            "Time 1": True,
                            "Time 2": True,
                            "Time 3": True,
                            "Time 4": True,
                        },
                        "renameByName": {
                            "Value #A": "in sync",
                            "Value #B": "healthy",
                            "Value #C": "running",
                            "Value #D": "desired",
                        },
                    },
                },
            ],
        ),
        P(
            "Notifications",
            "Notifications the reconciler sent or failed to send, per "
            "channel, in the selected range.",
            "short",
            [
                Q(
                    f"sum by (channel, result) (increase(reconciler_notifications_total{{{ENV}}}"
                    "[$__range]))",
                    "{{channel}} {{result}}",
                    instant=True,
                )
            ],
            kind="bargauge",
            w=24,
            h=6,
        ),
    ]
    return dashboard(
        "driftless-deployments",
        "Deployments (GitOps)",
        "What the reconciler did: applied and desired revisions, passes and their results, "
        "rollbacks, drift and per-service sync and health.",
        ["deployments", "gitops"],
        items,
        variables=[ENV_VAR],
        annotations=DEPLOY_ANNOTATIONS,
        time_from="now-24h",
    )


DASHBOARDS = {
    "api-performance.json": api_dashboard,
    "system-infrastructure.json": system_dashboard,
    "business.json": business_dashboard,
    "security-logs.json": security_dashboard,
    "deployments.json": deployments_dashboard,
}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    rendered = render()
    if "--check" in argv:
        stale = [
            n
            for n, text in rendered.items()
            if not (OUT / n).exists() or (OUT / n).read_text() != text
        ]
        if stale:
            print(f"out of date: {', '.join(stale)}; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
