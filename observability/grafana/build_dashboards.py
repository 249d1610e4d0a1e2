"""Build the Grafana dashboards in observability/grafana/dashboards/ from their description.

    python observability/grafana/build_dashboards.py          # rewrite the JSON files
    python observability/grafana/build_dashboards.py --check  # exit 1 if a file is out of date

The JSON files are what Grafana provisions and what is reviewed; this script keeps the five of them
consistent (fixed uids, one data source uid per kind, a unit and a description on every panel,
LogQL and PromQL written once). The description lives in builder/: vocabulary.py (queries, panels,
rows, variables), panel.py and dashboard.py (their Grafana JSON) and one module per dashboard.
Edit there, run this, commit both.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder import (
    api_performance,
    business,
    deployments,
    security_logs,
    system_infrastructure,
)

OUT = Path(__file__).resolve().parent / "dashboards"

DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "api-performance.json": api_performance.build,
    "system-infrastructure.json": system_infrastructure.build,
    "business.json": business.build,
    "security-logs.json": security_logs.build,
    "deployments.json": deployments.build,
}


def render() -> dict[str, str]:
    """File name -> the JSON text it should hold."""
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
