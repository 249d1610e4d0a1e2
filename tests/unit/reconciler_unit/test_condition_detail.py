"""The raw error behind a condition (``Condition.detail``): recorded from the pass's outcome for
Ready and Stalled, cleared once Ready again, kept bounded, in status.json, and an older
status.json without it still loads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema

from reconciler.errors import Reason
from reconciler.models import PassResult, RevisionInfo
from reconciler.outcome import PassOutcome
from reconciler.record import DETAIL_LIMIT, clip, record
from reconciler.status import ConditionType, Status

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
REV = RevisionInfo(sha="b" * 40, subject="Bump web to 2", author="Ann <ann@x>", committed_at=T0)
RAW = 'Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused'
SCHEMA = Path(__file__).resolve().parents[3] / "reconciler/web/static/status.schema.json"


def _detail(status: Status, type_: ConditionType) -> str:
    cond = status.condition(type_)
    assert cond is not None
    return cond.detail


def test_a_transient_error_keeps_its_raw_text_until_ready_again() -> None:
    s = Status(stack="shop", environment="test")
    out = PassOutcome(
        PassResult.ERROR,
        Reason.REGISTRY_UNAVAILABLE,
        "checking image x: registry 127.0.0.1:5000 unreachable: Get ...",
        revision=REV,
        detail=RAW,
    )
    s = record(s, out, T0)
    assert _detail(s, ConditionType.READY) == RAW
    assert s.condition(ConditionType.STALLED) is None  # an error does not touch Stalled
    ok = PassOutcome(PassResult.SUCCESS, Reason.RECONCILIATION_SUCCEEDED, "deployed web")
    s = record(s, ok, T0 + timedelta(minutes=1))
    assert _detail(s, ConditionType.READY) == ""
    assert _detail(s, ConditionType.STALLED) == ""


def test_a_stall_carries_the_raw_text_too() -> None:
    out = PassOutcome(
        PassResult.REFUSED,
        Reason.PREFLIGHT_FAILED,
        "image x: the registry refused access",
        revision=REV,
        detail="unauthorized: authentication required",
        stalled_reason=Reason.PREFLIGHT_FAILED,
    )
    s = record(Status(stack="shop", environment="test"), out, T0)
    assert _detail(s, ConditionType.STALLED) == "unauthorized: authentication required"
    assert _detail(s, ConditionType.READY) == "unauthorized: authentication required"


def test_a_long_raw_text_keeps_its_head_and_its_tail() -> None:
    text = "first line\n" + "x" * 10_000 + "\nlast line"
    kept = clip(text)
    assert len(kept) < DETAIL_LIMIT + 100
    assert kept.startswith("first line")
    assert kept.endswith("last line")
    assert "characters left out" in kept
    assert clip("short") == "short"


def test_the_detail_is_in_status_json_and_valid_against_its_schema() -> None:
    out = PassOutcome(PassResult.ERROR, Reason.GIT_REMOTE_UNAVAILABLE, "m", detail="fatal: x")
    s = record(Status(stack="shop", environment="test"), out, T0)
    data = json.loads(json.dumps(s.to_dict()))
    [ready] = [c for c in data["conditions"] if c["type"] == "Ready"]
    assert ready["detail"] == "fatal: x"
    schema = json.loads(SCHEMA.read_text())
    conditions = schema["properties"]["conditions"]
    jsonschema.validate(data["conditions"], conditions)
    assert Status.from_dict(data) == s


def test_a_status_json_from_before_the_detail_still_loads() -> None:
    s = record(
        Status(stack="shop", environment="test"),
        PassOutcome(PassResult.ERROR, Reason.DOCKER_UNAVAILABLE, "engine down", detail="EOF"),
        T0,
    )
    data = s.to_dict()
    for cond in data["conditions"]:
        del cond["detail"]
    loaded = Status.from_dict(json.loads(json.dumps(data)))
    ready = loaded.condition(ConditionType.READY)
    assert ready is not None
    assert (ready.reason, ready.message, ready.detail) == (
        Reason.DOCKER_UNAVAILABLE,
        "engine down",
        "",
    )
