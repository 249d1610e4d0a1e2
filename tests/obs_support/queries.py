"""Every query the dashboards and rules run, ready to send to Prometheus or a LogQL parser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from obs_support import files

# What Grafana puts in place of its built-in variables when it runs a query. The tests and the
# benchmark evaluate over the last hour, so $__range is 1h; $__rate_interval is at least four
# scrape intervals (the test Prometheus scrapes every second, production every 15 s).
BUILTIN_DEFAULTS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "__range_s": "3600",
    "__auto": "15s",
}

LOGQL_CHECK = files.ROOT / "tests" / "obs_support" / "logql" / "parse.mjs"


@dataclass(frozen=True)
class Query:
    source: str  # "dashboard api-performance.json / panel 'Request rate' / A" or "rule ..."
    language: str  # "promql" or "logql"
    expr: str
    instant: bool = False


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _variable_defaults(dashboard: dict[str, Any]) -> dict[str, str]:
    values = dict(BUILTIN_DEFAULTS)
    for var in dashboard.get("templating", {}).get("list", []):
        current = var.get("current", {}).get("value")
        if isinstance(current, list):
            current = current[0] if current else ""
        if current in (None, "", "$__all"):
            current = var.get("allValue") or ".*"
        values[var["name"]] = str(current)
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace $name, ${name} and [[name]] the way Grafana does (longest names first)."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name.isdigit():
            return m.group(0)  # a regex group in label_replace: Grafana leaves it alone
        if name not in values:
            raise KeyError(f"unknown variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", repl, expr)


def _is_loki(ds: Any) -> bool:
    return isinstance(ds, dict) and ds.get("type") == "loki"


def dashboard_queries(name: str, dashboard: dict[str, Any]) -> list[Query]:
    values = _variable_defaults(dashboard)
    found: list[Query] = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            ds = target.get("datasource") or panel.get("datasource")
            expr = target.get("expr", "")
            if not expr:
                continue
            lang = "logql" if _is_loki(ds) else "promql"
            instant = bool(target.get("instant")) or target.get("queryType") == "instant"
            found.append(
                Query(
                    f"dashboard {name} / panel {panel['title']!r} / {target['refId']}",
                    lang,
                    substitute(expr, values),
                    instant,
                )
            )
    for ann in dashboard.get("annotations", {}).get("list", []):
        if ann.get("expr"):
            lang = "logql" if _is_loki(ann.get("datasource")) else "promql"
            found.append(
                Query(
                    f"dashboard {name} / annotation {ann['name']!r}",
                    lang,
                    substitute(ann["expr"], values),
                )
            )
    for var in dashboard.get("templating", {}).get("list", []):
        q = var.get("query")
        text = q.get("query") if isinstance(q, dict) else q
        if text and not str(text).startswith("label_values("):
            found.append(Query(f"dashboard {name} / variable {var['name']}", "promql", text))
    return found


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard, variable, query) for label_values() variables: Prometheus has no such function;
    Grafana turns label_values(selector, label) into a series lookup."""
    out = []
    for name, dashboard in files.dashboards().items():
        for var in dashboard.get("templating", {}).get("list", []):
            q = var.get("query")
            text = q.get("query") if isinstance(q, dict) else q
            if text and str(text).startswith("label_values("):
                out.append((name, var["name"], str(text)))
    return out


def rule_queries() -> list[Query]:
    found = [
        Query(f"recording rule {r['record']}", "promql", r["expr"]) for r in files.rules("record")
    ]
    found += [Query(f"alert rule {r['alert']}", "promql", r["expr"]) for r in files.rules("alert")]
    return found


def all_queries() -> list[Query]:
    found: list[Query] = []
    for name, dashboard in files.dashboards().items():
        found += dashboard_queries(name, dashboard)
    return found + rule_queries()


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (selectors), without functions and keywords."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    stripped = re.sub(r"\{[^}]*\}", "{}", stripped)
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)
    names = set()
    for m in re.finditer(
        r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\(|\{|by\b|without\b|)", stripped
    ):
        word, follow = m.group(1), m.group(2)
        if follow in ("(", "by", "without"):
            continue  # a function or aggregation
        if word in _KEYWORDS:
            continue
        before = stripped[: m.start()].rstrip()
        if before.endswith(
            ("by (", "without (", "on (", "ignoring (", "group_left (", "group_right (", ",")
        ) and _in_grouping(stripped, m.start()):
            continue
        names.add(word)
    return names


_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
    "Inf",
    "NaN",
    "le",
}


def _in_grouping(text: str, pos: int) -> bool:
    """True when POS is inside the parentheses of by/without/on/ignoring/group_*."""
    depth = 0
    i = pos
    while i > 0:
        i -= 1
        if text[i] == ")":
            depth += 1
        elif text[i] == "(":
            if depth == 0:
                head = text[:i].rstrip()
                return head.endswith(
                    ("by", "without", "on", "ignoring", "group_left", "group_right")
                )
            depth -= 1
    return False


def parse_logql(exprs: list[str]) -> list[dict[str, Any] | None]:
    """Parse each LogQL expression with Grafana's grammar (node + @grafana/lezer-logql)."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is missing: scripts/deps.sh installs Node.js")
    if not (LOGQL_CHECK.parent / "node_modules" / "@grafana" / "lezer-logql").exists():
        raise RuntimeError("@grafana/lezer-logql is missing: run scripts/deps.sh node")
    result = subprocess.run(
        [node, str(LOGQL_CHECK)],
        input=json.dumps(exprs),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=LOGQL_CHECK.parent,
        check=True,
    )
    parsed: list[dict[str, Any] | None] = json.loads(result.stdout)
    return parsed
