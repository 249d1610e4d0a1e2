"""Masking: secrets never reach the page, the JSON API or a chat message."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from reconciler.errors import Reason
from reconciler.links import RepoLinks
from reconciler.masking import Masker
from reconciler.models import FieldDiff, PassResult, RevisionInfo
from reconciler.redact import mask_shapes, redact
from reconciler.status import HistoryEntry, ServiceStatus, Status

T0 = datetime(2025, 1, 2, tzinfo=UTC)


def test_secret_looking_env_values_are_masked_in_drift() -> None:
    status = Status(
        stack="s",
        environment="e",
        inventory=(
            ServiceStatus(
                name="api",
                image="a:1",
                live_image="a:1",
                drift=(
                    FieldDiff("env.DB_PASSWORD", "hunter2-new", "hunter2-old"),
                    FieldDiff("env.LOG_LEVEL", "INFO", "DEBUG"),
                    FieldDiff("labels.traefik.http.auth-token", "t0k3n-value", None),
                ),
            ),
        ),
    )
    text = json.dumps(redact(status.to_dict()))
    assert "hunter2" not in text
    assert "t0k3n-value" not in text
    assert '"DEBUG"' in text
    assert "env.DB_PASSWORD" in text


def test_known_token_shapes_and_urls_are_masked_anywhere() -> None:
    slack = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"
    text = (
        f"push failed: https://x-access-token:ghp_{'a' * 36}@github.com/acme/r.git; "
        f"webhook {slack}; curl -H 'Authorization: Bearer abcdefghijklmnop1234' "
        "http://svc/health?token=s3cr3tvalue&x=1 API_KEY=plain-value (LOG_LEVEL=debug)"
    )
    masked = mask_shapes(text)
    for secret in ("ghp_", "XXXXXXXX", "abcdefghijklmnop1234", "s3cr3tvalue", "plain-value"):
        assert secret not in masked, secret
    assert "LOG_LEVEL=debug)" in masked
    assert "x=1" in masked


def test_registered_secrets_are_masked_in_history_messages() -> None:
    masker = Masker()
    masker.register("registered-secret-value")
    entry = HistoryEntry(
        revision=RevisionInfo("ab" * 20, subject="Bump", author="Alice Author"),
        started_at=T0,
        finished_at=T0,
        duration_seconds=1.0,
        result=PassResult.FAILED,
        reason=Reason.APPLY_FAILED,
        message="docker said registered-secret-value is wrong",
    )
    data = masker.redact(Status(stack="s", environment="e", history=(entry,)).to_dict())
    assert "registered-secret-value" not in json.dumps(data)
    assert data["history"][0]["revision"]["author"] == "Alice Author"  # not a secret


def test_repo_links_drop_credentials_and_know_the_forges() -> None:
    gh = RepoLinks.from_url("https://user:tok3n@github.com/acme/shop.git")
    assert "tok3n" not in gh.display_url
    assert gh.commit("abc") == "https://github.com/acme/shop/commit/abc"
    assert gh.on_github
    assert RepoLinks.from_url("git@github.com:acme/shop.git").commit("1") == (
        "https://github.com/acme/shop/commit/1"
    )
    assert RepoLinks.from_url("ssh://git@gitlab.com/g/sub/p.git").commit("1") == (
        "https://gitlab.com/g/sub/p/-/commit/1"
    )
    assert RepoLinks.from_url("file:///srv/git/x.git").commit("1") is None
    custom = RepoLinks.from_url("git@git.internal:ops/x.git", "https://web.internal/ops/x/c/{sha}")
    assert custom.commit("beef") == "https://web.internal/ops/x/c/beef"


def test_plan_lines_hide_secret_variables_but_not_others() -> None:
    text = (
        "~ web: update (drift)\n    env.DB_PASSWORD: live-pw -> git-pw\n"
        "    env.LOG_LEVEL: info -> debug"
    )
    masked = Masker().mask(text)
    assert "live-pw" not in masked
    assert "git-pw" not in masked
    assert "env.DB_PASSWORD: *** -> ***" in masked
    assert "env.LOG_LEVEL: info -> debug" in masked
