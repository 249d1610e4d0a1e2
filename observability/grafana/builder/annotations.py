"""The deploy and rollback annotations, read from the reconciler's metrics, that the API and
deployments dashboards draw over their graphs."""

from __future__ import annotations

from typing import Any

from builder.vocabulary import PROM

DEPLOY_ANNOTATIONS: list[dict[str, Any]] = [
    {
        "name": "Deployments",
        "datasource": PROM,
        "enable": True,
        "hide": False,
        "iconColor": "#5794F2",
        "expr": "max by (environment, revision) (reconciler_applied_revision_info)"
        " unless max by (environment, revision) (reconciler_applied_revision_info offset 2m)",
        "step": "1m",
        "titleFormat": "Deployed",
        "textFormat": "{{environment}}: revision {{revision}}",
        "tagKeys": "environment",
        "useValueForTime": False,
    },
    {
        "name": "Rollbacks",
        "datasource": PROM,
        "enable": True,
        "hide": False,
        "iconColor": "#F2495C",
        "expr": "sum by (environment) (increase(reconciler_rollbacks_total[2m])) > 0",
        "step": "1m",
        "titleFormat": "Rolled back",
        "textFormat": "{{environment}}: the reconciler rolled a deployment back",
        "tagKeys": "environment",
        "useValueForTime": False,
    },
]
