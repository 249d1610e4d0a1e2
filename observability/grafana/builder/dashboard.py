"""A dashboard's Grafana JSON: its panels and rows laid out on the 24-column grid, inside the
envelope every Driftless dashboard shares (tag, links menu, refresh, built-in annotations)."""

from __future__ import annotations

from typing import Any

from builder.panel import panel
from builder.vocabulary import P, Row

GRID_WIDTH = 24

# the "Driftless" menu on every dashboard: the other dashboards, keeping the time range
LINKS = [
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
]

BUILTIN_ANNOTATION = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}


def row(title: str, pid: int, y: int) -> dict[str, Any]:
    """A row header across the whole grid at line y."""
    return {
        "id": pid,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
        "panels": [],
    }


def layout(items: list[P | Row]) -> list[dict[str, Any]]:
    """Panels left to right, wrapping when the grid is full; a row starts a new line."""
    panels: list[dict[str, Any]] = []
    x = y = row_h = 0
    for pid, item in enumerate(items, 1):
        if isinstance(item, Row):
            if x:
                y, x, row_h = y + row_h, 0, 0
            panels.append(row(item.title, pid, y))
            y += 1
            continue
        if x + item.w > GRID_WIDTH:
            y, x, row_h = y + row_h, 0, 0
        panels.append(panel(item, pid, x, y))
        x += item.w
        row_h = max(row_h, item.h)
    return panels


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
    """The whole dashboard, tagged driftless and with the given variables and annotations."""
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
        "links": LINKS,
        "annotations": {"list": [BUILTIN_ANNOTATION, *(annotations or [])]},
        "templating": {"list": variables or []},
        "panels": layout(items),
    }
