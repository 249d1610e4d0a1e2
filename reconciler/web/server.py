"""The agent's HTTP server (aiohttp, on the agent's event loop): status page, JSON API, push
webhooks, ``/metrics`` and ``/healthz``. It is a :class:`reconciler.control.Component`: the agent
starts it after taking its lock and stops it after the last pass.

Routes (the JSON schemas are in ``static/*.schema.json`` and served under ``/api/schema/``):

=======================  ======  ==================================================================
``GET /``                 page    the status page (``?part=content``: only ``<main>``, for refresh)
``GET /api/status``       JSON    the agent's status (masked); schema ``status.schema.json``
``GET /api/history``      JSON    the last passes (``?limit=N``, ``?result=failed``)
``POST /api/sync``        token   wake the loop for a pass now
``POST /api/pause``       token   suspend applying (``{"reason": "..."}`` optional)
``POST /api/resume``      token   resume applying (and run a pass)
``POST /api/quarantine/{sha}/release``  token   allow a quarantined revision again
``POST /hooks/github``    HMAC    GitHub push webhook (``X-Hub-Signature-256``)
``POST /hooks/gitlab``    token   GitLab push webhook (``X-Gitlab-Token``)
``GET /metrics``          text    the engine's ``reconciler_*`` metrics and the server's own
``GET /healthz``          JSON    200 while the loop runs, 503 when it is stuck
=======================  ======  ==================================================================
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from aiohttp import web
from loguru import logger
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import reconciler
from reconciler.config import Config, HttpConfig
from reconciler.control import AgentControl
from reconciler.errors import ConfigError
from reconciler.redact import mask_text, redact
from reconciler.status import Status
from reconciler.web.auth import SecretFile, bearer_token, github_signature_ok, same
from reconciler.web.health import judge
from reconciler.web.metrics import ServerMetrics
from reconciler.web.page import render_content, render_page
from reconciler.web.settings import Site

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATIC = files("reconciler.web") / "static"
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
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
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
    def from_config(cls, config: Config) -> StatusServer:
        return cls(config.http, Site.from_config(config))

    # ---------------------------------------------------------------- Component

    async def start(self, agent: AgentControl) -> None:
        s = self.settings
        self._token = SecretFile(s.token_file, "API token") if s.token_file else None
        self._github = (
            SecretFile(s.webhook_secret_file, "webhook secret") if s.webhook_secret_file else None
        )
        self._gitlab = (
            SecretFile(s.gitlab_token_file, "GitLab webhook token") if s.gitlab_token_file else None
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
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._observe, self._headers])
        r = app.router
        r.add_get("/", self.page)
        r.add_get("/api/status", self.api_status)
        r.add_get("/api/history", self.api_history)
        r.add_get("/api/schema/{name}.json", self.api_schema)
        r.add_post("/api/sync", self.api_sync)
        r.add_post("/api/pause", self.api_pause)
        r.add_post("/api/resume", self.api_resume)
        r.add_post("/api/quarantine/{sha}/release", self.api_release)
        r.add_post("/hooks/github", self.hook_github)
        r.add_post("/hooks/gitlab", self.hook_gitlab)
        r.add_get("/metrics", self.prometheus)
        r.add_get("/healthz", self.healthz)
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
            logger.exception("HTTP {} {} failed: {}", request.method, name, mask_text(str(exc)))
            return _error(500, "internal error; see the agent's log")
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

    # ---------------------------------------------------------------- reading

    def document(self, status: Status | None = None) -> dict[str, Any]:
        """The status as the JSON API and the page show it: masked, without the engine's
        internal ``extra`` memory, plus where it comes from."""
        data = (status or self.agent.status).to_dict()
        data.pop("extra", None)
        data["source"] = {
            "repository": self.site.repo.display_url,
            "web_url": self.site.repo.web_url,
            "branch": self.site.branch,
            "path": self.site.path,
        }
        data["agent"] = {
            "version": reconciler.__version__,
            "self_heal": self.site.self_heal,
            "dry_run": self.site.dry_run,
        }
        redacted: dict[str, Any] = redact(data)
        # the clone URL is already masked by RepoLinks; keep it readable
        redacted["source"]["repository"] = self.site.repo.display_url
        return redacted

    async def page(self, request: web.Request) -> web.Response:
        data = self.document()
        now = self._clock()
        html: str
        if request.query.get("part") == "content":
            html = render_content(data, self.site, now, can_act=self._token is not None)
        else:
            html = render_page(
                data,
                self.site,
                now,
                refresh=self.settings.refresh,
                can_act=self._token is not None,
                version=reconciler.__version__,
            )
        return web.Response(text=html, content_type="text/html")

    async def api_status(self, request: web.Request) -> web.Response:
        return _json(self.document())

    async def api_history(self, request: web.Request) -> web.Response:
        status = self.agent.status
        entries: list[dict[str, Any]] = redact(status.to_dict()["history"])
        result = request.query.get("result")
        if result:
            entries = [e for e in entries if e.get("result") == result]
        limit = request.query.get("limit")
        if limit is not None:
            if not limit.isdigit() or int(limit) < 1:
                return _error(400, "limit must be a positive integer")
            entries = entries[: int(limit)]
        return _json(
            {
                "stack": status.stack,
                "environment": status.environment,
                "count": len(entries),
                "history": entries,
            }
        )

    async def api_schema(self, request: web.Request) -> web.Response:
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
        return _json(body, status=200 if verdict.ok else 503)

    # ---------------------------------------------------------------- actions

    async def _authorize(self, request: web.Request) -> tuple[web.Response | None, dict[str, str]]:
        """``(None, form)`` when the request carries the API token (``Authorization: Bearer``,
        or a ``token`` form field: the page's way, which leaves the Authorization header to a
        proxy's basic auth); else the error response."""
        form: dict[str, str] = {}
        if self._token is None:
            return _error(403, "the API is read-only: no token configured (http.token_file)"), form
        given = bearer_token(request.headers.get("Authorization"))
        if given is None and request.content_type == "application/x-www-form-urlencoded":
            posted = await request.post()
            form = {k: str(v) for k, v in posted.items()}
            given = form.get("token", "").strip() or None
        if given is None or not same(given, self._token.value):
            logger.warning(
                "refused {} {} from {}: {} API token",
                request.method,
                request.path,
                request.remote,
                "wrong" if given else "no",
            )
            response = _error(401, "a valid API token is required (Authorization: Bearer ...)")
            response.headers["WWW-Authenticate"] = 'Bearer realm="reconciler"'
            return response, form
        return None, form

    def _done(self, request: web.Request, message: str, **extra: Any) -> web.Response:
        if request.content_type == "application/x-www-form-urlencoded" and "text/html" in (
            request.headers.get("Accept", "")
        ):
            raise web.HTTPSeeOther(location="../" * (request.path.count("/") - 1))
        return _json({"ok": True, "message": message, **extra}, status=202)

    async def api_sync(self, request: web.Request) -> web.Response:
        denied, _ = await self._authorize(request)
        if denied:
            return denied
        queued = await self.agent.request_sync("manual")
        message = "pass queued" if queued else "a pass is already queued"
        return self._done(request, message, queued=queued)

    async def api_pause(self, request: web.Request) -> web.Response:
        denied, form = await self._authorize(request)
        if denied:
            return denied
        reason = form.get("reason", "")
        if request.content_type == "application/json" and request.can_read_body:
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return _error(400, 'the body must be JSON: {"reason": "..."}')
            if not isinstance(body, dict) or not isinstance(body.get("reason", ""), str):
                return _error(400, 'the body must be JSON: {"reason": "..."}')
            reason = body.get("reason", "")
        reason = reason.strip()[:500] or "paused from the status page"
        await self.agent.pause(reason)
        logger.warning("applying paused through the API from {}: {}", request.remote, reason)
        return self._done(request, "applying paused", paused=True)

    async def api_resume(self, request: web.Request) -> web.Response:
        denied, _ = await self._authorize(request)
        if denied:
            return denied
        await self.agent.resume()
        logger.info("applying resumed through the API from {}", request.remote)
        return self._done(request, "applying resumed", paused=False)

    async def api_release(self, request: web.Request) -> web.Response:
        denied, _ = await self._authorize(request)
        if denied:
            return denied
        sha = request.match_info["sha"]
        if sha != "all" and not (4 <= len(sha) <= 64 and all(c in "0123456789abcdef" for c in sha)):
            return _error(400, "give a commit sha (hex) or 'all'")
        released = await self.agent.release_quarantine(sha)
        if not released:
            return _error(404, f"{sha} is not quarantined")
        logger.warning("quarantine of {} released through the API from {}", sha, request.remote)
        return self._done(request, f"{sha[:12]} released from quarantine", released=sha)

    # ---------------------------------------------------------------- webhooks

    async def hook_github(self, request: web.Request) -> web.Response:
        if self._github is None:
            return _error(403, "GitHub webhooks are not configured (http.webhook_secret_file)")
        body = await request.read()
        if not github_signature_ok(
            self._github.value, body, request.headers.get("X-Hub-Signature-256")
        ):
            self.metrics.webhook("github", "rejected")
            logger.warning(
                "refused a GitHub webhook from {}: {} signature",
                request.remote,
                "wrong" if request.headers.get("X-Hub-Signature-256") else "no",
            )
            return _error(401, "invalid or missing X-Hub-Signature-256")
        event = request.headers.get("X-GitHub-Event", "")
        delivery = request.headers.get("X-GitHub-Delivery", "-")
        if event == "ping":
            self.metrics.webhook("github", "ignored")
            return _json({"ok": True, "message": "pong"})
        return await self._push("github", event == "push", body, delivery)

    async def hook_gitlab(self, request: web.Request) -> web.Response:
        if self._gitlab is None:
            return _error(403, "GitLab webhooks are not configured (http.gitlab_token_file)")
        given = request.headers.get("X-Gitlab-Token")
        if not given or not same(given, self._gitlab.value):
            self.metrics.webhook("gitlab", "rejected")
            logger.warning("refused a GitLab webhook from {}: bad token", request.remote)
            return _error(401, "invalid or missing X-Gitlab-Token")
        body = await request.read()
        event = request.headers.get("X-Gitlab-Event", "")
        delivery = request.headers.get("X-Gitlab-Event-UUID", "-")
        return await self._push("gitlab", event == "Push Hook", body, delivery)

    async def _push(self, source: str, is_push: bool, body: bytes, delivery: str) -> web.Response:
        watched = f"refs/heads/{self.site.branch}"
        if not is_push:
            self.metrics.webhook(source, "ignored")
            return _json({"ok": True, "message": "not a push event: ignored"}, status=202)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            self.metrics.webhook(source, "rejected")
            return _error(400, "the payload is not JSON")
        ref = payload.get("ref") if isinstance(payload, dict) else None
        if ref != watched:
            self.metrics.webhook(source, "ignored")
            return _json(
                {"ok": True, "message": f"push to {ref}, watching {watched}: ignored"}, status=202
            )
        queued = await self.agent.request_sync("webhook")
        self.metrics.webhook(source, "accepted")
        after = str(payload.get("after") or "")[:12]
        logger.info("{} push webhook {} for {} at {}: pass requested", source, delivery, ref, after)
        return _json(
            {
                "ok": True,
                "message": "pass queued" if queued else "a pass is already queued",
                "queued": queued,
            },
            status=202,
        )


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, indent=1))


def _error(status: int, message: str) -> web.Response:
    return _json({"ok": False, "error": message}, status=status)
