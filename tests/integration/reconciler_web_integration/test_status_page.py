"""What the status page shows a person on call, from a real agent's recorded status: the source,
desired and applied revisions, the condition and its reason, the services table, the last passes,
quarantined revisions, reverts and the actions; nothing secret; nothing loaded from elsewhere.

The status is written to the agent's state directory (as the engine records it after a failed
deploy), the real ``StatusServer`` serves it, and the page is read over HTTP and parsed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest
from reconciler_support.agents import opened_agent

from reconciler.config import load_config
from reconciler.errors import Reason
from reconciler.models import CheckResult, FieldDiff, PassResult, RevisionInfo
from reconciler.state import StateStore
from reconciler.status import (
    Condition,
    ConditionType,
    HistoryEntry,
    QuarantineEntry,
    RevertEntry,
    ServiceStatus,
    Status,
)
from reconciler.web import Site, StatusServer

NOW = datetime(2026, 5, 6, 12, 0, 0, tzinfo=UTC)
DESIRED = RevisionInfo(
    "d" * 40, "Bump api to 2.1", "Bob Builder <bob@example.org>", NOW - timedelta(hours=3)
)
APPLIED = RevisionInfo(
    "a" * 40, "Bump api to 2.0", "Alice Operator <alice@example.org>", NOW - timedelta(days=1)
)
REVERT = "e" * 40
COMMIT = "https://github.com/acme/shop/commit/"
TOKEN = "page-token-5b1e0c"
LIVE_SECRET = "live-db-password-71c2"
WANT_SECRET = "want-db-password-0e9d"


class _Texts(HTMLParser):
    """The text inside each element that has an ``id``, and every ``src``/``href``."""

    VOID = frozenset({"meta", "link", "input", "br", "img"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, str | None]] = []
        self.by_id: dict[str, list[str]] = {}
        self.urls: list[str] = []
        self.attrs: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.handle_data(" ")  # cells and blocks are words apart
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        ident = found.get("id")
        if ident:
            self.by_id[ident] = []
            self.attrs[ident] = found
        if tag not in self.VOID:
            self.open.append((tag, ident))

    def handle_endtag(self, tag: str) -> None:
        self.handle_data(" ")
        while self.open:
            name, _ = self.open.pop()
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, ident in self.open:
            if ident:
                self.by_id[ident].append(data)

    def text(self, ident: str) -> str:
        return " ".join("".join(self.by_id[ident]).split())


def _listening(port: int) -> set[str]:
    """The local addresses (hex, as the kernel lists them) of the sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def _status(stack: str, environment: str) -> Status:
    started = NOW - timedelta(minutes=5)
    return Status(
        stack=stack,
        environment=environment,
        desired=DESIRED,
        last_attempted=DESIRED,
        last_applied=APPLIED,
        conditions=(
            Condition(
                ConditionType.READY, False, "HealthCheckFailed", "api: HTTP 503 from /ready", NOW
            ),
            Condition(ConditionType.HEALTHY, False, "HealthCheckFailed", "unhealthy: api", NOW),
            Condition(ConditionType.STALLED, False, Reason.HEALTH_CHECK_FAILED, "", NOW),
        ),
        inventory=(
            ServiceStatus(
                name="api",
                image="127.0.0.1:5000/driftless/api:2.1",
                live_image="127.0.0.1:5000/driftless/api:2.0@sha256:" + "0" * 64,
                replicas_desired=3,
                replicas_running=2,
                in_sync=False,
                healthy=False,
                drift=(
                    FieldDiff("image", "driftless/api:2.1", "driftless/api:2.0"),
                    FieldDiff("env.DB_PASSWORD", WANT_SECRET, LIVE_SECRET),
                ),
                last_check=CheckResult(name="api", ok=False, status_code=503, output="db down"),
            ),
            ServiceStatus(
                name="worker",
                image="127.0.0.1:5000/driftless/worker:7",
                live_image="127.0.0.1:5000/driftless/worker:7",
                replicas_desired=1,
                replicas_running=1,
                in_sync=True,
                healthy=True,
            ),
        ),
        history=(
            HistoryEntry(
                DESIRED,
                started,
                started + timedelta(seconds=42.5),
                42.5,
                PassResult.ROLLED_BACK,
                "HealthCheckFailed",
                "api: HTTP 503 from /ready",
                ("api",),
                "webhook",
            ),
            HistoryEntry(
                APPLIED,
                NOW - timedelta(days=1),
                NOW - timedelta(days=1) + timedelta(seconds=12),
                12.0,
                PassResult.SUCCESS,
                "ReconciliationSucceeded",
                "",
                ("api",),
                "interval",
            ),
        ),
        quarantine=(QuarantineEntry(DESIRED, "h" * 12, "HealthCheckFailed", "api: HTTP 503", NOW),),
        reverts=(
            RevertEntry(DESIRED, (DESIRED.sha,), REVERT, "HealthCheckFailed", "api: HTTP 503", NOW),
        ),
        last_pass_at=NOW - timedelta(seconds=20),
        next_pass_at=NOW + timedelta(seconds=40),
        last_result=PassResult.ROLLED_BACK,
        last_reason="HealthCheckFailed",
    )


@dataclass
class _Served:
    """The status page as the browser received it, and the port it is served on."""

    html: str
    page: _Texts
    port: int


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[_Served]:
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "git-token").write_text("git-pass-8c1d\n")
    config = load_config(
        None,
        {
            "RECONCILER_GIT__URL": "https://github.com/acme/shop.git",
            "RECONCILER_GIT__TOKEN_FILE": str(tmp_path / "git-token"),
            "RECONCILER_GIT__BRANCH": "release",
            "RECONCILER_GIT__PATH": "desired-state/production",
            "RECONCILER_STACK": "shop",
            "RECONCILER_ENVIRONMENT": "production",
            "RECONCILER_STATE_DIR": str(tmp_path / "state"),
            "RECONCILER_HTTP__PORT": "0",
            "RECONCILER_HTTP__TOKEN_FILE": str(tmp_path / "token"),
        },
    )
    StateStore(config.state_dir).save_status(_status(config.stack, config.environment))
    async with opened_agent(config) as agent:
        agent.open()
        server = StatusServer(
            config.http, Site.from_config(config), agent.engine.masker, clock=lambda: NOW
        )
        await server.start(agent)
        try:
            assert server.port is not None
            url = f"http://127.0.0.1:{server.port}/"
            async with aiohttp.ClientSession() as http, http.get(url) as r:
                assert r.status == 200
                html = await r.text()
            page = _Texts()
            page.feed(html)
            yield _Served(html, page, server.port)
        finally:
            await server.stop()
            agent.close()


def test_the_page_is_served_on_loopback_only_by_default(served: _Served) -> None:
    assert _listening(served.port) == {"0100007F"}  # 127.0.0.1


def test_the_overall_condition_and_its_reason_come_first(served: _Served) -> None:
    hero = served.page.text("hero")
    assert "Not ready" in hero
    assert "HealthCheckFailed" in hero
    assert "api: HTTP 503 from /ready" in hero
    assert "last pass 20s ago" in hero


def test_desired_and_applied_show_sha_subject_author_and_age(served: _Served) -> None:
    desired = served.page.text("desired")
    assert "dddddddddddd Bump api to 2.1" in desired
    assert "Bob Builder" in desired
    assert "3h ago" in desired
    applied = served.page.text("applied")
    assert "behind desired" in applied
    assert "aaaaaaaaaaaa Bump api to 2.0" in applied
    assert "Alice Operator" in applied
    assert "1d ago" in applied
    assert f'href="{COMMIT}{DESIRED.sha}"' in served.html


def test_the_source_shows_repository_branch_and_folder(served: _Served) -> None:
    assert "github.com/acme/shop" in served.html
    assert "<code>release</code>" in served.html
    assert "<code>desired-state/production</code>" in served.html


def test_one_row_per_service_with_images_replicas_health_and_sync(served: _Served) -> None:
    services = served.page.text("services")
    header = "Service Desired image Running image Replicas Healthy In sync"
    assert services.startswith(header)
    rows = services.removeprefix(header)
    api, worker = rows.split(" worker ", 1)
    for shown in ("api:2.1", "api:2.0", "2/3", "unhealthy", "out of sync", "HTTP 503"):
        assert shown in api, shown
    for shown in ("worker:7", "1/1", "healthy", "in sync"):
        assert shown in worker, shown
    assert "unhealthy" not in worker
    assert "out of sync" not in worker
    assert "env.DB_PASSWORD" in api  # the drift is listed, its values are not


def test_the_last_passes_show_revision_result_duration_trigger_and_reason(
    served: _Served,
) -> None:
    history = served.page.text("history")
    newest, oldest = history.split("ago")[1:3]
    for shown in ("dddddddddddd", "rolled back", "42s", "webhook", "HealthCheckFailed"):
        assert shown in newest, shown
    for shown in ("aaaaaaaaaaaa", "success", "12s", "interval", "ReconciliationSucceeded"):
        assert shown in oldest, shown


def test_quarantined_revisions_can_be_released_and_reverts_are_linked(served: _Served) -> None:
    quarantine = served.page.text("quarantine")
    assert "dddddddddddd Bump api to 2.1" in quarantine
    assert "HealthCheckFailed" in quarantine
    assert "Release" in quarantine
    assert "eeeeeeeeeeee reverts dddddddddddd" in served.page.text("reverts")
    assert f'href="{COMMIT}{REVERT}"' in served.html


def test_sync_now_and_a_self_refreshing_page_with_nothing_from_another_host(
    served: _Served,
) -> None:
    assert served.page.text("sync-now") == "Sync now"
    assert served.page.attrs["sync-now"]["formaction"] == "api/sync"
    assert 'http-equiv="refresh"' in served.html
    local = [u for u in served.page.urls if not u.startswith(COMMIT) and "github.com" not in u]
    assert local
    assert all("://" not in u and not u.startswith("//") for u in local), local


def test_nothing_secret_is_shown(served: _Served) -> None:
    for secret in (TOKEN, LIVE_SECRET, WANT_SECRET, "git-pass-8c1d"):
        assert secret not in served.html, secret
