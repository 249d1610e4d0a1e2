"""The server's read-only routes: the status page, ``/api/status``, ``/api/history``, the JSON
schemas, ``/metrics`` and ``/healthz``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import reconciler
from reconciler.config_sections import HttpConfig
from reconciler.control import AgentControl
from reconciler.masking import Masker
from reconciler.status import Status
from reconciler.web.environments import peers
from reconciler.web.health import judge
from reconciler.web.metrics import ServerMetrics
from reconciler.web.page import render_content, render_page
from reconciler.web.replies import as_json, error
from reconciler.web.settings import Site
from reconciler.windows import report

STATIC = files("reconciler.web") / "static"


def document(
    status: Status, site: Site, masker: Masker, now: datetime | None = None
) -> dict[str, Any]:
    """The status as the JSON API and the page show it: masked, without the engine's internal
    notification memory, plus where it comes from and the sync windows' verdict at ``now``."""
    data = status.to_dict()
    data.pop("notified", None)
    data["sync_windows"] = report(site.windows, now or datetime.now(UTC))
    data["source"] = {
        "repository": site.repo.display_url,
        "web_url": site.repo.web_url,
        "branch": site.branch,
        "path": site.path,
    }
    data["agent"] = {
        "version": reconciler.__version__,
        "self_heal": site.self_heal,
        "dry_run": site.dry_run,
    }
    redacted: dict[str, Any] = masker.redact(data)
    # the clone URL is already masked by RepoLinks; keep it readable
    redacted["source"]["repository"] = site.repo.display_url
    return redacted


class Views:
    """The ``GET`` handlers of one running server."""

    def __init__(
        self,
        agent: AgentControl,
        site: Site,
        settings: HttpConfig,
        metrics: ServerMetrics,
        *,
        clock: Callable[[], datetime],
        started_at: datetime,
        can_act: bool,
        masker: Masker,
    ) -> None:
        self.masker = masker
        self.agent = agent
        self.site = site
        self.settings = settings
        self.metrics = metrics
        self._clock = clock
        self._started_at = started_at
        self._can_act = can_act

    async def page(self, request: web.Request) -> web.Response:
        now = self._clock()
        data = document(self.agent.status, self.site, self.masker, now)
        data["peers"] = await peers(self.settings.environments)
        html: str
        if request.query.get("part") == "content":
            html = render_content(data, self.site, now, can_act=self._can_act)
        else:
            html = render_page(
                data,
                self.site,
                now,
                refresh=self.settings.refresh,
                can_act=self._can_act,
                version=reconciler.__version__,
            )
        return web.Response(text=html, content_type="text/html")

    async def status(self, request: web.Request) -> web.Response:
        return as_json(document(self.agent.status, self.site, self.masker, self._clock()))

    async def history(self, request: web.Request) -> web.Response:
        status = self.agent.status
        entries: list[dict[str, Any]] = self.masker.redact(status.to_dict()["history"])
        result = request.query.get("result")
        if result:
            entries = [e for e in entries if e.get("result") == result]
        limit = request.query.get("limit")
        if limit is not None:
            if not limit.isdigit() or int(limit) < 1:
                return error(400, "limit must be a positive integer")
            entries = entries[: int(limit)]
        return as_json(
            {
                "stack": status.stack,
                "environment": status.environment,
                "count": len(entries),
                "history": entries,
            }
        )

    async def schema(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ("status", "history"):
            raise web.HTTPNotFound()
        text = (STATIC / f"{name}.schema.json").read_text(encoding="utf-8")
        return web.Response(text=text, content_type="application/schema+json")

    async def prometheus(self, request: web.Request) -> web.Response:
        body = generate_latest(self.agent.metrics_registry) + self.metrics.exposition()
        response = web.Response(body=body)
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        status = self.agent.status
        verdict = judge(
            status,
            self._clock(),
            started_at=self._started_at,
            stuck_after=self.site.stuck_after,
            late_after=max(60.0, self.site.interval),
        )
        body = {
            "status": verdict.state,
            "detail": verdict.detail,
            "phase": status.phase.value if status.phase else None,
            "last_pass_at": status.last_pass_at.isoformat() if status.last_pass_at else None,
            "next_pass_at": status.next_pass_at.isoformat() if status.next_pass_at else None,
            "stalled": any(c.type == "Stalled" and c.status for c in status.conditions),
        }
        return as_json(body, status=200 if verdict.ok else 503)
