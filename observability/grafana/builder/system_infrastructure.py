"""The system and infrastructure dashboard: the VM and its services (CPU, memory, disks,
network, containers per service, PostgreSQL, Redis, Nginx and backups)."""

from __future__ import annotations

from typing import Any

from builder.dashboard import dashboard
from builder.vocabulary import RATE, P, Q, query_var, sections

NODE = 'instance=~"$node"'
NET_DEV = 'device!~"lo|veth.*|docker.*|br-.*|vx-.*"'

NODE_VAR = query_var("node", "Node", "label_values(node_uname_info, instance)")
SERVICE_VAR = query_var("service", "Service", "label_values(container_start_time_seconds, service)")


HOST: list[P] = [
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
                f"node_memory_MemTotal_bytes{{{NODE}}} - node_memory_MemAvailable_bytes{{{NODE}}}",
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
]


CONTAINERS: list[P] = [
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
]


POSTGRESQL: list[P] = [
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
]


REDIS_AND_NGINX: list[P] = [
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
]


BACKUPS: list[P] = [
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


def build() -> dict[str, Any]:
    """The dashboard's JSON."""
    return dashboard(
        "driftless-system",
        "System and infrastructure",
        "The VM and its services: CPU, memory, disks, network, containers per service, "
        "PostgreSQL, Redis, Nginx and backups.",
        ["infrastructure"],
        sections(
            ("Host", HOST),
            ("Containers", CONTAINERS),
            ("PostgreSQL", POSTGRESQL),
            ("Redis and Nginx", REDIS_AND_NGINX),
            ("Backups", BACKUPS),
        ),
        variables=[NODE_VAR, SERVICE_VAR],
    )
