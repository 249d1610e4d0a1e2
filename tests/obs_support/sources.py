"""Which scrape job produces the series a PromQL expression reads."""

from __future__ import annotations

import re

from obs_support import queries

# metric-name prefix -> the job (Swarm service) that exports it
PREFIXES = [
    ("http_", "api"),
    ("api_", "api"),
    ("reconciler_", "reconciler"),
    ("node_", "node-exporter"),
    ("driftless_backup_", "node-exporter"),  # scripts/backup.sh, through the textfile collector
    ("pg_", "postgres-exporter"),
    ("redis_", "redis-exporter"),
    ("nginx_", "nginx-exporter"),
    ("probe_", "blackbox-https"),
    ("container_", "cadvisor"),
    ("alertmanager_", "alertmanager"),
    ("prometheus_", "prometheus"),
]


def metric_source(name: str) -> str:
    """The job behind a metric; recording rules (level:metric:ops) count as their metric's."""
    if name.count(":") == 2:
        name = name.split(":")[1]
    for prefix, job in PREFIXES:
        if name.startswith(prefix):
            return job
    raise KeyError(f"no known source for metric {name}")


def sources(expr: str) -> set[str]:
    found = set()
    for name in queries.metric_names(expr):
        if name == "up":
            jobs = re.findall(r'up\{[^}]*job="([^"]+)"', expr)
            found |= set(jobs) if jobs else {"prometheus"}
        else:
            found.add(metric_source(name))
    return found
