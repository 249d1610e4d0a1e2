"""What the status page shows a person on call, from a real agent's recorded status: the source,
desired and applied revisions, the condition and its reason, the services table, the last passes,
quarantined revisions, reverts and the actions; nothing secret; nothing loaded from elsewhere.

The status is written to the agent's state directory (as the engine records it after a failed
deploy), the real ``StatusServer`` serves it, and the page is read over HTTP and parsed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import aiohttp

from reconciler.agent import Agent
from reconciler.config import load_config
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
            Condition(ConditionType.STALLED, False, "NotStalled", "", NOW),
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


async def test_the_page_shows_what_a_person_on_call_needs(tmp_path: Path) -> None:
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
    agent = Agent(config)
    agent.open()
    server = StatusServer(config.http, Site.from_config(config), clock=lambda: NOW)
    await server.start(agent)
    try:
        assert server.port is not None
        assert _listening(server.port) == {"0100007F"}  # 127.0.0.1 only, by default
        url = f"http://127.0.0.1:{server.port}/"
        async with aiohttp.ClientSession() as http, http.get(url) as r:
            assert r.status == 200
            html = await r.text()
    finally:
        await server.stop()
        agent.close()

    page = _Texts()
    page.feed(html)
    commit = "https://github.com/acme/shop/commit/"
    # the overall condition and its reason, first
    hero = page.text("hero")
    assert "Not ready" in hero
    assert "HealthCheckFailed" in hero
    assert "api: HTTP 503 from /ready" in hero
    assert "last pass 20s ago" in hero
    # desired vs applied: short SHA, subject, author, age
    desired = page.text("desired")
    assert "dddddddddddd Bump api to 2.1" in desired
    assert "Bob Builder" in desired
    assert "3h ago" in desired
    applied = page.text("applied")
    assert "behind desired" in applied
    assert "aaaaaaaaaaaa Bump api to 2.0" in applied
    assert "Alice Operator" in applied
    assert "1d ago" in applied
    assert f'href="{commit}{DESIRED.sha}"' in html
    # the repository (without its credentials), branch and folder
    assert "github.com/acme/shop" in html
    assert "<code>release</code>" in html
    assert "<code>desired-state/production</code>" in html
    # one row per service: desired image, running image, replicas, healthy, in sync
    services = page.text("services")
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
    # the last passes: time, revision, result, duration, trigger, reason
    history = page.text("history")
    newest, oldest = history.split("ago")[1:3]
    for shown in ("dddddddddddd", "rolled back", "42s", "webhook", "HealthCheckFailed"):
        assert shown in newest, shown
    for shown in ("aaaaaaaaaaaa", "success", "12s", "interval", "ReconciliationSucceeded"):
        assert shown in oldest, shown
    # quarantined revisions (with a release button) and reverts pushed (linked)
    quarantine = page.text("quarantine")
    assert "dddddddddddd Bump api to 2.1" in quarantine
    assert "HealthCheckFailed" in quarantine
    assert "Release" in quarantine
    assert "eeeeeeeeeeee reverts dddddddddddd" in page.text("reverts")
    assert f'href="{commit}{REVERT}"' in html
    # the actions, and a page that refreshes itself without anything from another host
    assert page.text("sync-now") == "Sync now"
    assert page.attrs["sync-now"]["formaction"] == "api/sync"
    assert 'http-equiv="refresh"' in html
    local = [u for u in page.urls if not u.startswith(commit) and "github.com" not in u]
    assert local
    assert all("://" not in u and not u.startswith("//") for u in local), local
    # nothing secret
    for secret in (TOKEN, LIVE_SECRET, WANT_SECRET, "git-pass-8c1d"):
        assert secret not in html, secret
