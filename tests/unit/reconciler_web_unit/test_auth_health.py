"""Webhook signatures, bearer tokens and the loop's liveness judgement."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.errors import ConfigError
from reconciler.masking import Masker
from reconciler.models import Phase
from reconciler.status import ConditionType, Status
from reconciler.web.auth import SecretFile, bearer_token, github_signature, github_signature_ok
from reconciler.web.health import judge

T0 = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)


def test_github_signature_matches_the_documented_example() -> None:
    # GitHub's docs: secret "It's a Secret to Everybody", payload "Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert github_signature("It's a Secret to Everybody", b"Hello, World!") == expected
    assert github_signature_ok("It's a Secret to Everybody", b"Hello, World!", expected)
    assert not github_signature_ok("It's a Secret to Everybody", b"Hello, World?", expected)
    assert not github_signature_ok("other", b"Hello, World!", expected)
    assert not github_signature_ok("It's a Secret to Everybody", b"Hello, World!", None)
    assert not github_signature_ok("x", b"", "sha1=" + expected[7:])


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def test_secret_files_are_read_masked_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-token-value\n")
    masker = Masker()
    secret = SecretFile(path, "API token", masker)
    assert secret.value == "first-token-value"
    assert "first-token-value" not in masker.mask("token first-token-value leaked")
    assert "first-token-value" in Masker().mask("first-token-value"), "another agent's masker"
    path.write_text("second-token-value\n")
    import os

    os.utime(path, (1, 1))  # a different mtime, as a rotation would give
    assert secret.value == "second-token-value"
    assert "second-token-value" not in masker.mask("rotated: second-token-value")
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        SecretFile(tmp_path / "empty", "x", masker)
    with pytest.raises(ConfigError, match="cannot read"):
        SecretFile(tmp_path / "missing", "x", masker)


def _running(since: datetime) -> Status:
    s = Status(stack="s", environment="e").with_condition(
        ConditionType.RECONCILING, True, "Progressing", "", since
    )
    return replace(s, phase=Phase.VERIFY, progress="waiting for api")


def test_a_pass_running_too_long_is_stuck() -> None:
    status = _running(T0)
    ok = judge(status, T0 + timedelta(seconds=100), started_at=T0, stuck_after=600, late_after=60)
    assert ok.ok
    assert "verify" in ok.detail
    stuck = judge(
        status, T0 + timedelta(seconds=700), started_at=T0, stuck_after=600, late_after=60
    )
    assert not stuck.ok
    assert stuck.state == "stuck"


def test_an_old_transition_from_disk_counts_from_the_start() -> None:
    status = _running(T0 - timedelta(days=1))
    v = judge(status, T0 + timedelta(seconds=5), started_at=T0, stuck_after=600, late_after=60)
    assert v.ok


def test_an_overdue_next_pass_is_stuck() -> None:
    status = replace(
        Status(stack="s", environment="e"),
        last_pass_at=T0,
        next_pass_at=T0 + timedelta(seconds=60),
    )
    assert judge(
        status, T0 + timedelta(seconds=90), started_at=T0, stuck_after=600, late_after=60
    ).ok
    late = judge(status, T0 + timedelta(seconds=200), started_at=T0, stuck_after=600, late_after=60)
    assert not late.ok
    assert "overdue" in late.detail


def test_no_first_pass_is_starting_then_stuck() -> None:
    status = Status(stack="s", environment="e")
    assert judge(status, T0, started_at=T0, stuck_after=600, late_after=60).state == "starting"
    assert not judge(
        status, T0 + timedelta(seconds=601), started_at=T0, stuck_after=600, late_after=60
    ).ok
