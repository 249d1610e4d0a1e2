"""The business dashboard: what the shop's users do (registrations, logins, products by
category, countries and peak hours)."""

from __future__ import annotations

from typing import Any

from builder.dashboard import dashboard
from builder.vocabulary import API, RATE, P, Q, sections

USERS: list[P] = [
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
]


CATALOGUE: list[P] = [
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
]


AUDIENCE: list[P] = [
    P(
        "Requests by country",
        "Requests per country (from Nginx's X-Country-Code) in the selected time range, top 15.",
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
                f"topk(5, sum by (country) (job_country:api_requests_by_country:rate5m{{{API}}}))",
                "{{country}}",
            )
        ],
        w=18,
        h=4,
    ),
]


def build() -> dict[str, Any]:
    """The dashboard's JSON."""
    return dashboard(
        "driftless-business",
        "Business",
        "What the shop's users do: registrations, logins, products by category, countries "
        "and peak hours.",
        ["business"],
        sections(("Users", USERS), ("Catalogue", CATALOGUE), ("Audience", AUDIENCE)),
        time_from="now-7d",
    )
