"""The agent's HTTP server (aiohttp, on the agent's event loop): status page, JSON API, push
webhooks, ``/metrics`` and ``/healthz``. It is a :class:`reconciler.control.Component`: the agent
starts it after taking its lock and stops it after the last pass.

This module sets the server up, routes and observes the requests; the handlers are in
``views`` (read-only), ``actions`` (with the API token) and ``hooks`` (push webhooks).

Routes (the JSON schemas are in ``static/*.schema.json`` and served under ``/api/schema/``):

=======================  ======  ==================================================================
``GET /``                 page    the status page (``?part=content``: only ``<main>``, for refresh)
``GET /api/status``       JSON    the agent's status (masked); schema ``status.schema.json``
``GET /api/history``      JSON    the last passes (``?limit=N``, ``?result=failed``)
``POST /api/sync``        token   wake the loop for a pass now
``POST /api/pause``       token   suspend applying (``{"reason": "..."}`` optional)
``POST /api/resume``      token   resume applying (and run a pass)
``POST /api/quarantine/{sha}/release``  token   allow a quarantined revision again
``POST /api/sync-anyway``  token   apply the head (or ``{"revision": sha}``) outside the windows
``POST /hooks/github``    HMAC    GitHub push webhook (``X-Hub-Signature-256``)
``POST /hooks/gitlab``    token   GitLab push webhook (``X-Gitlab-Token``)
``GET /metrics``          text    the engine's ``reconciler_*`` metrics and the server's own
``GET /healthz``          JSON    200 while the loop runs, 503 when it is stuck
=======================  ======  ==================================================================
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from loguru import logger

from reconciler.config import Config
from reconciler.config_sections import HttpConfig
from reconciler.control import AgentControl
from reconciler.errors import ConfigError
from reconciler.masking import Masker
from reconciler.status import Status
from reconciler.web.actions import Actions
from reconciler.web.auth import SecretFile
from reconciler.web.hooks import Hooks
from reconciler.web.metrics import ServerMetrics
from reconciler.web.replies import error
from reconciler.web.settings import Site
from reconciler.web.views import STATIC, Views, document

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def _now() -> datetime:
    return datetime.now(UTC)


class StatusServer:
    """``Component`` named ``http``."""

    name = "http"

    def __init__(
        self,
        settings: HttpConfig,
        site: Site,
        masker: Masker | None = None,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.masker = masker or Masker()
        self.settings = settings
        self.site = site
        self._clock = clock
        self.metrics = ServerMetrics(site.stack, site.environment)
        self._agent: AgentControl | None = None
        self._runner: web.AppRunner | None = None
        self._token: SecretFile | None = None
        self._github: SecretFile | None = None
        self._gitlab: SecretFile | None = None
        self._started_at = clock()
        self.port: int | None = None

    @classmethod
    def from_config(cls, config: Config, masker: Masker | None = None) -> StatusServer:
        return cls(config.http, Site.from_config(config), masker)

    # ---------------------------------------------------------------- Component

    async def start(self, agent: AgentControl) -> None:
        s = self.settings
        self._token = SecretFile(s.token_file, "API token", self.masker) if s.token_file else None
        self._github = (
            SecretFile(s.webhook_secret_file, "webhook secret", self.masker)
            if s.webhook_secret_file
            else None
        )
        self._gitlab = (
            SecretFile(s.gitlab_token_file, "GitLab webhook token", self.masker)
            if s.gitlab_token_file
            else None
        )
        self._agent = agent
        self._started_at = self._clock()
        app = self.app(agent)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        tcp = web.TCPSite(self._runner, s.bind, s.port, reuse_address=True)
        try:
            await tcp.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise ConfigError(f"http: cannot listen on {s.bind}:{s.port}: {exc.strerror}") from exc
        addresses = self._runner.addresses  # the bound port when port 0 was asked for
        self.port = int(addresses[0][1]) if addresses else s.port
        logger.info(
            "status page and API on http://{}:{}/ (actions {}, GitHub webhook {}, GitLab {})",
            s.bind,
            self.port,
            "enabled" if self._token else "disabled: no http.token_file",
            "enabled" if self._github else "disabled",
            "enabled" if self._gitlab else "disabled",
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---------------------------------------------------------------- app

    def app(self, agent: AgentControl) -> web.Application:
        self._agent = agent
        views = Views(
            agent,
            self.site,
            self.settings,
            self.metrics,
            clock=self._clock,
            started_at=self._started_at,
            can_act=self._token is not None,
            masker=self.masker,
        )
        actions = Actions(agent, self._token)
        hooks = Hooks(
            agent, self.site.branch, self.metrics, github=self._github, gitlab=self._gitlab
        )
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._observe, self._headers])
        r = app.router
        r.add_get("/", views.page)
        r.add_get("/api/status", views.status)
        r.add_get("/api/history", views.history)
        r.add_get("/api/schema/{name}.json", views.schema)
        r.add_post("/api/sync", actions.sync)
        r.add_post("/api/pause", actions.pause)
        r.add_post("/api/resume", actions.resume)
        r.add_post("/api/quarantine/{sha}/release", actions.release)
        r.add_post("/api/sync-anyway", actions.sync_anyway)
        r.add_post("/hooks/github", hooks.github)
        r.add_post("/hooks/gitlab", hooks.gitlab)
        r.add_get("/metrics", views.prometheus)
        r.add_get("/healthz", views.healthz)
        r.add_static("/static", str(STATIC), append_version=False)
        return app

    @property
    def agent(self) -> AgentControl:
        if self._agent is None:
            raise RuntimeError("the HTTP server is not started")
        return self._agent

    @web.middleware
    async def _observe(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        if name.startswith("/static"):
            name = "/static"
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except Exception as exc:
            logger.exception(
                "HTTP {} {} failed: {}", request.method, name, self.masker.mask(str(exc))
            )
            return error(500, "internal error; see the agent's log")
        finally:
            self.metrics.request(request.method, name, status, time.perf_counter() - started)

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "public, max-age=300")
        else:
            response.headers.setdefault("Cache-Control", "no-store")
        if response.content_type == "text/html":
            response.headers.setdefault("Content-Security-Policy", _CSP)
        return response

    def document(self, status: Status | None = None) -> dict[str, Any]:
        """The status (the agent's now) as the JSON API and the page show it: see
        :func:`reconciler.web.views.document`."""
        return document(status or self.agent.status, self.site, self.masker, self._clock())
