"""The server's actions, allowed only with the API token: ``POST /api/sync``, ``/api/pause``,
``/api/resume`` and ``/api/quarantine/{sha}/release``. Each answers JSON (202), or sends the
page's plain HTML forms back to the page (303)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from loguru import logger

from reconciler.control import AgentControl
from reconciler.web.auth import SecretFile, bearer_token, same
from reconciler.web.replies import as_json, error


class Actions:
    """The action handlers of one running server; ``token`` None: the API is read-only."""

    def __init__(self, agent: AgentControl, token: SecretFile | None) -> None:
        self.agent = agent
        self._token = token

    async def _authorize(self, request: web.Request) -> tuple[web.Response | None, dict[str, str]]:
        """``(None, form)`` when the request carries the API token (``Authorization: Bearer``,
        or a ``token`` form field: the page's way, which leaves the Authorization header to a
        proxy's basic auth); else the error response."""
        form: dict[str, str] = {}
        if self._token is None:
            return error(403, "the API is read-only: no token configured (http.token_file)"), form
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
            response = error(401, "a valid API token is required (Authorization: Bearer ...)")
            response.headers["WWW-Authenticate"] = 'Bearer realm="reconciler"'
            return response, form
        return None, form

    def _done(self, request: web.Request, message: str, **extra: Any) -> web.Response:
        if request.content_type == "application/x-www-form-urlencoded" and "text/html" in (
            request.headers.get("Accept", "")
        ):
            raise web.HTTPSeeOther(location="../" * (request.path.count("/") - 1))
        return as_json({"ok": True, "message": message, **extra}, status=202)

    async def sync(self, request: web.Request) -> web.Response:
        denied, _ = await self._authorize(request)
        if denied:
            return denied
        queued = await self.agent.request_sync("manual")
        message = "pass queued" if queued else "a pass is already queued"
        return self._done(request, message, queued=queued)

    async def pause(self, request: web.Request) -> web.Response:
        denied, form = await self._authorize(request)
        if denied:
            return denied
        reason = form.get("reason", "")
        if request.content_type == "application/json" and request.can_read_body:
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return error(400, 'the body must be JSON: {"reason": "..."}')
            if not isinstance(body, dict) or not isinstance(body.get("reason", ""), str):
                return error(400, 'the body must be JSON: {"reason": "..."}')
            reason = body.get("reason", "")
        reason = reason.strip()[:500] or "paused from the status page"
        await self.agent.pause(reason)
        logger.warning("applying paused through the API from {}: {}", request.remote, reason)
        return self._done(request, "applying paused", paused=True)

    async def resume(self, request: web.Request) -> web.Response:
        denied, _ = await self._authorize(request)
        if denied:
            return denied
        await self.agent.resume()
        logger.info("applying resumed through the API from {}", request.remote)
        return self._done(request, "applying resumed", paused=False)

    async def release(self, request: web.Request) -> web.Response:
        denied, _ = await self._authorize(request)
        if denied:
            return denied
        sha = request.match_info["sha"]
        if sha != "all" and not (4 <= len(sha) <= 64 and all(c in "0123456789abcdef" for c in sha)):
            return error(400, "give a commit sha (hex) or 'all'")
        released = await self.agent.release_quarantine(sha)
        if not released:
            return error(404, f"{sha} is not quarantined")
        logger.warning("quarantine of {} released through the API from {}", sha, request.remote)
        return self._done(request, f"{sha[:12]} released from quarantine", released=sha)
