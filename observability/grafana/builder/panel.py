"""One panel's Grafana JSON: its targets, its field defaults and the options its kind needs."""

from __future__ import annotations

import copy
from typing import Any

from builder.vocabulary import LOKI, PROM, P, Q

# single-value panels show the last value that is not null
LAST_VALUE = {"calcs": ["lastNotNull"], "fields": "", "values": False}

# options each kind of panel gets unless the panel sets them itself
KIND_OPTIONS: dict[str, dict[str, Any]] = {
    "timeseries": {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    },
    "stat": {"reduceOptions": LAST_VALUE, "colorMode": "value", "graphMode": "area"},
    "bargauge": {
        "reduceOptions": LAST_VALUE,
        "orientation": "horizontal",
        "displayMode": "gradient",
    },
    "piechart": {
        "reduceOptions": LAST_VALUE,
        "pieType": "donut",
        "legend": {
            "displayMode": "table",
            "placement": "right",
            "showLegend": True,
            "values": ["percent"],
        },
    },
    "logs": {
        "showTime": True,
        "wrapLogMessage": True,
        "sortOrder": "Descending",
        "enableLogDetails": True,
    },
}

# how a time series draws unless the panel sets it itself
TIMESERIES_CUSTOM = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}


def target(q: Q, index: int, *, loki: bool) -> dict[str, Any]:
    """The target of the index-th query (refId A, B, ...) against Prometheus or Loki."""
    t: dict[str, Any] = {
        "refId": chr(ord("A") + index),
        "datasource": LOKI if loki else PROM,
        "expr": q.expr,
        "legendFormat": q.legend,
    }
    if loki:
        t["queryType"] = "range" if not q.instant else "instant"
    else:
        t["range"] = not q.instant
        t["instant"] = q.instant
    if q.interval:
        t["interval"] = q.interval
    return t


def field_defaults(p: P) -> dict[str, Any]:
    """fieldConfig.defaults: unit, thresholds, value mappings, colours, range and draw style."""
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if p.thresholds:
        steps = [{"color": c, "value": v} for v, c in p.thresholds]
    defaults: dict[str, Any] = {
        "unit": p.unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "mappings": p.mappings,
        "color": {"mode": "palette-classic" if p.kind == "timeseries" else "thresholds"},
    }
    optional = {"decimals": p.decimals, "min": p.min, "max": p.max}
    defaults.update({key: value for key, value in optional.items() if value is not None})
    custom = {**TIMESERIES_CUSTOM, **p.custom} if p.kind == "timeseries" else dict(p.custom)
    if custom:
        defaults["custom"] = custom
    return defaults


def options(p: P) -> dict[str, Any]:
    """The panel's own options, completed with those of its kind."""
    opts = dict(p.options)
    for key, value in KIND_OPTIONS.get(p.kind, {}).items():
        opts.setdefault(key, copy.deepcopy(value))
    return opts


def panel(p: P, pid: int, x: int, y: int) -> dict[str, Any]:
    """The panel with id pid whose top left corner is at column x, line y of the grid."""
    built: dict[str, Any] = {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": LOKI if p.loki else PROM,
        "gridPos": {"h": p.h, "w": p.w, "x": x, "y": y},
        "targets": [target(q, i, loki=p.loki) for i, q in enumerate(p.queries)],
        "fieldConfig": {"defaults": field_defaults(p), "overrides": []},
        "options": options(p),
    }
    if p.transformations:
        built["transformations"] = p.transformations
    return built
