"""What a dashboard is written in: queries, panels, rows, template variables, data sources and
the selectors several dashboards share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    """A row header: starts a new line of panels under a title."""

    title: str


def sections(*parts: tuple[str, list[P]]) -> list[P | Row]:
    """The items of a dashboard: each titled list of panels under a row of that title."""
    items: list[P | Row] = []
    for title, panels in parts:
        items += [Row(title), *panels]
    return items


def query_var(name: str, label: str, query: str, *, loki: bool = False) -> dict[str, Any]:
    """A template variable whose values come from a query, multi-select with "All" selected."""
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
