"""The security and logs dashboard: failed logins, client and server errors, traffic against its
own baseline, the busiest client addresses and error logs (Loki)."""

from __future__ import annotations

from typing import Any

from builder.dashboard import dashboard
from builder.vocabulary import API, RATE, P, Q, sections

NGINX_LOGS = '{stack="driftless", service=~".+_nginx"}'
APP_ERRORS = '{stack="driftless", level=~"error|critical"}'
# the exception type on the last line of a traceback ("ValueError: ...") or of a one-line
# "ApplyError: ..." (RE2; $ is the end of the text, so only the last line can match)
EXCEPTION_TYPE = r"(?P<error_type>[A-Za-z_][A-Za-z0-9_.]*): [^\n]*\n?$"


AUTHENTICATION: list[P] = [
    P(
        "Failed logins (5 min)",
        "Failed login attempts in the last 5 minutes. Alert TooManyFailedLogins fires above 10.",
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
                f'sum by (status) (rate(http_requests_total{{{API}, status=~"4..|5.."}}[{RATE}]))',
                "{{status}}",
            )
        ],
    ),
]


UNUSUAL_TRAFFIC: list[P] = [
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
]


LOGS: list[P] = [
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


def build() -> dict[str, Any]:
    """The dashboard's JSON."""
    return dashboard(
        "driftless-security",
        "Security and logs",
        "Failed logins, client and server errors, traffic against its own baseline, the "
        "busiest client addresses and error logs (Loki).",
        ["security", "logs"],
        sections(
            ("Authentication", AUTHENTICATION), ("Unusual traffic", UNUSUAL_TRAFFIC), ("Logs", LOGS)
        ),
        time_from="now-24h",
    )
