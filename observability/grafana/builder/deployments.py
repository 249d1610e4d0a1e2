"""The deployments (GitOps) dashboard: what the reconciler did (applied and desired revisions,
passes and their results, rollbacks, drift and per-service sync and health)."""

from __future__ import annotations

from typing import Any

from builder.annotations import DEPLOY_ANNOTATIONS
from builder.dashboard import dashboard
from builder.vocabulary import RATE, P, Q, query_var, sections

ENV_VAR = query_var("environment", "Environment", "label_values(reconciler_condition, environment)")
ENV = 'environment=~"$environment"'

# a 0/1 condition shown as no/yes
ON_OFF: list[dict[str, Any]] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "no", "color": "red"},
            "1": {"text": "yes", "color": "green"},
        },
    }
]


REVISIONS: list[P] = [
    P(
        "Applied revision",
        "The git revision the reconciler last applied, per environment.",
        "short",
        [
            Q(
                f"max by (environment, revision) (reconciler_applied_revision_info{{{ENV}}})",
                "{{environment}}: {{revision}}",
                instant=True,
            )
        ],
        kind="stat",
        w=8,
        h=4,
        options={"textMode": "name", "colorMode": "none", "graphMode": "none"},
    ),
    P(
        "Desired revision",
        "The git revision the reconciler read from the desired state, per environment.",
        "short",
        [
            Q(
                f"max by (environment, revision) (reconciler_desired_revision_info{{{ENV}}})",
                "{{environment}}: {{revision}}",
                instant=True,
            )
        ],
        kind="stat",
        w=8,
        h=4,
        options={"textMode": "name", "colorMode": "none", "graphMode": "none"},
    ),
    P(
        "Services out of sync (drift)",
        "Services whose live spec differs from git.",
        "short",
        [
            Q(
                f"max by (environment) (reconciler_services_out_of_sync{{{ENV}}})",
                "{{environment}}",
            )
        ],
        kind="stat",
        w=8,
        h=4,
        thresholds=[(None, "green"), (1, "red")],
    ),
    P(
        "Time since last successful pass",
        "Alert ReconcilerLastSuccessTooOld fires after 30 minutes.",
        "s",
        [
            Q(
                f"time() - max by (environment) (reconciler_last_success_timestamp_seconds"
                f"{{{ENV}}})",
                "{{environment}}",
            )
        ],
        kind="stat",
        w=8,
        h=4,
        thresholds=[(None, "green"), (900, "yellow"), (1800, "red")],
    ),
    P(
        "Time since last pass",
        "When the reconciler last finished a pass of any result.",
        "s",
        [
            Q(
                f"time() - max by (environment) (reconciler_last_pass_timestamp_seconds{{{ENV}}})",
                "{{environment}}",
            )
        ],
        kind="stat",
        w=8,
        h=4,
    ),
    P(
        "Conditions",
        "The reconciler's conditions (Ready, Reconciling, Healthy, Stalled).",
        "short",
        [Q(f"max by (type) (reconciler_condition{{{ENV}}})", "{{type}}")],
        kind="stat",
        w=8,
        h=4,
        mappings=ON_OFF,
        options={"textMode": "value_and_name", "colorMode": "background", "graphMode": "none"},
    ),
]


PASSES: list[P] = [
    P(
        "Passes by result",
        "Reconciliation passes per interval by result (success, noop, "
        "refused, failed, rolled_back, error).",
        "short",
        [
            Q(
                f"sum by (result) (increase(reconciler_passes_total{{{ENV}}}[{RATE}]))",
                "{{result}}",
            )
        ],
        custom={
            "drawStyle": "bars",
            "fillOpacity": 80,
            "stacking": {"mode": "normal", "group": "A"},
        },
    ),
    P(
        "Pass, apply and verify duration (p95)",
        "95th percentile of how long a pass, the apply phase and the health verification took.",
        "s",
        [
            Q(
                f"histogram_quantile(0.95, sum by (le) (rate(reconciler_pass_duration_seconds_"
                f"bucket{{{ENV}}}[{RATE}])))",
                "pass",
            ),
            Q(
                f"histogram_quantile(0.95, sum by (le) (rate(reconciler_apply_duration_seconds_"
                f"bucket{{{ENV}}}[{RATE}])))",
                "apply",
            ),
            Q(
                "histogram_quantile(0.95, sum by (le) ("
                "rate(reconciler_verify_duration_seconds_"
                f"bucket{{{ENV}}}[{RATE}])))",
                "verify",
            ),
        ],
    ),
    P(
        "Rollbacks and reverts",
        "Rollbacks applied and revert commits pushed in the selected range.",
        "short",
        [
            Q(
                f"sum(increase(reconciler_rollbacks_total{{{ENV}}}[$__range]))",
                "rollbacks",
                instant=True,
            ),
            Q(
                f"sum(increase(reconciler_reverts_pushed_total{{{ENV}}}[$__range]))",
                "reverts",
                instant=True,
            ),
        ],
        kind="stat",
        w=8,
        decimals=0,
    ),
    P(
        "Drift over time",
        "Services out of sync with git over time.",
        "short",
        [
            Q(
                f"max by (environment) (reconciler_services_out_of_sync{{{ENV}}})",
                "{{environment}}",
            )
        ],
        w=8,
    ),
    P(
        "Git fetch errors and quarantine",
        "Failed fetches of the desired-state repository "
        "and revisions quarantined after a failed deploy.",
        "short",
        [
            Q(
                f"sum(increase(reconciler_git_fetch_errors_total{{{ENV}}}[$__range]))",
                "fetch errors",
                instant=True,
            ),
            Q(f"max(reconciler_quarantined_revisions{{{ENV}}})", "quarantined", instant=True),
        ],
        kind="stat",
        w=8,
        decimals=0,
    ),
]


SERVICES: list[P] = [
    P(
        "Per-service sync and health",
        "For each service: in sync with git, healthy, and running against desired replicas.",
        "short",
        [
            Q(f"max by (service) (reconciler_service_in_sync{{{ENV}}})", instant=True),
            Q(f"max by (service) (reconciler_service_healthy{{{ENV}}})", instant=True),
            Q(f"max by (service) (reconciler_service_replicas_running{{{ENV}}})", instant=True),
            Q(f"max by (service) (reconciler_service_replicas_desired{{{ENV}}})", instant=True),
        ],
        kind="table",
        w=24,
        h=8,
        transformations=[
            {"id": "joinByField", "options": {"byField": "service", "mode": "outer"}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {
                        "Time": True,
                        "Time 1": True,
                        "Time 2": True,
                        "Time 3": True,
                        "Time 4": True,
                    },
                    "renameByName": {
                        "Value #A": "in sync",
                        "Value #B": "healthy",
                        "Value #C": "running",
                        "Value #D": "desired",
                    },
                },
            },
        ],
    ),
    P(
        "Notifications",
        "Notifications the reconciler sent or failed to send, per channel, in the selected range.",
        "short",
        [
            Q(
                f"sum by (channel, result) (increase(reconciler_notifications_total{{{ENV}}}"
                "[$__range]))",
                "{{channel}} {{result}}",
                instant=True,
            )
        ],
        kind="bargauge",
        w=24,
        h=6,
    ),
]


def build() -> dict[str, Any]:
    """The dashboard's JSON."""
    return dashboard(
        "driftless-deployments",
        "Deployments (GitOps)",
        "What the reconciler did: applied and desired revisions, passes and their results, "
        "rollbacks, drift and per-service sync and health.",
        ["deployments", "gitops"],
        sections(("Revisions", REVISIONS), ("Passes", PASSES), ("Services", SERVICES)),
        variables=[ENV_VAR],
        annotations=DEPLOY_ANNOTATIONS,
        time_from="now-24h",
    )
