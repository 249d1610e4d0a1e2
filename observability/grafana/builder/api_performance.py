"""The API performance dashboard: request rate, latency, errors and saturation of the shop API,
per route and replica, with the reconciler's deploy and rollback annotations."""

from __future__ import annotations

from typing import Any

from builder.annotations import DEPLOY_ANNOTATIONS
from builder.dashboard import dashboard
from builder.vocabulary import API, API_I, RATE, P, Q, query_var, sections

# the share of 5xx responses: alert ApiHighErrorRate fires above 5 %
ERROR_RATIO_STEPS: list[tuple[float | None, str]] = [
    (None, "green"),
    (0.01, "yellow"),
    (0.05, "red"),
]

INSTANCE_VAR = query_var("instance", "Replica", 'label_values(up{job="api"}, instance)')
ROUTE_VAR = query_var("route", "Route", 'label_values(http_requests_total{job="api"}, route)')


OVERVIEW: list[P] = [
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
        thresholds=ERROR_RATIO_STEPS,
        decimals=2,
    ),
    P(
        "p95 latency",
        "95th percentile of response time over 5 minutes. Alert ApiHighLatency fires above 2 s.",
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
]


TRAFFIC: list[P] = [
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
                f"topk(10, sum by (route) (increase(http_requests_total{{{API_I}}}[$__range])))",
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
]


LATENCY: list[P] = [
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
]


ERRORS: list[P] = [
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
        thresholds=ERROR_RATIO_STEPS,
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
]


SATURATION: list[P] = [
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


def build() -> dict[str, Any]:
    """The dashboard's JSON."""
    return dashboard(
        "driftless-api",
        "API performance",
        "Request rate, latency, errors and saturation of the shop API, per route and replica. "
        "Deploy and rollback annotations come from the reconciler.",
        ["api"],
        sections(
            ("Overview", OVERVIEW),
            ("Traffic", TRAFFIC),
            ("Latency", LATENCY),
            ("Errors", ERRORS),
            ("Saturation", SATURATION),
        ),
        variables=[INSTANCE_VAR, ROUTE_VAR],
        annotations=DEPLOY_ANNOTATIONS,
    )
