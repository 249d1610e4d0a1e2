"""The compose documents ``docker stack deploy`` gets during a pass (pure).

* :func:`stamped_document` — the whole desired state, every service stamped with
  ``driftless.spec-hash`` and ``driftless.revision``;
* :func:`wave_document` — only the services of the waves rolled out so far (deployed without
  ``--prune``, a service left out keeps running as it is until its wave);
* :func:`held` — the canary services' rolling update held after their canary tasks: Swarm
  updates ``canary`` tasks, then waits :data:`HOLD` before the next ones, long enough that only
  the agent moves it on (promotion: the same document without the hold) or back (rollback).
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping

from reconciler.models import DesiredState
from reconciler.types import JSONDict

#: the delay that holds a rolling update after its canary tasks (the agent promotes or rolls
#: back long before; a stopped agent's next start finishes the pass)
HOLD = "24h"


def stamped_document(
    desired: DesiredState, revision: str, keep_revision: Mapping[str, str] | None = None
) -> JSONDict:
    """The document ``docker stack deploy`` gets: every service stamped with
    ``driftless.spec-hash`` and ``driftless.revision`` (``keep_revision`` keeps the revision label
    of services this pass does not change, so an unchanged service is not touched)."""
    doc = copy.deepcopy(desired.document)
    for spec in desired.services:
        service = doc["services"][spec.name]
        deploy = service.setdefault("deploy", {})
        labels = deploy.get("labels") or {}
        if isinstance(labels, list):
            labels = dict(str(item).partition("=")[::2] for item in labels)
        labels["driftless.spec-hash"] = spec.spec_hash
        labels["driftless.revision"] = (keep_revision or {}).get(spec.name, revision)
        deploy["labels"] = labels
    return doc


def wave_document(doc: JSONDict, later: Collection[str]) -> JSONDict:
    """``doc`` without the services that roll out in a later wave."""
    out = copy.deepcopy(doc)
    out["services"] = {k: v for k, v in doc["services"].items() if k not in later}
    return out


def held(doc: JSONDict, canaries: Mapping[str, int]) -> JSONDict:
    """``doc`` with each canary service's rolling update held after its canary tasks."""
    out = copy.deepcopy(doc)
    for name, canary in canaries.items():
        deploy = out["services"][name].setdefault("deploy", {})
        update = dict(deploy.get("update_config") or {})
        update.update(parallelism=canary, delay=HOLD)
        deploy["update_config"] = update
    return out
