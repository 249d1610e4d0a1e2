"""The server's actions, allowed only with the API token: ``POST /api/sync``, ``/api/pause``,
``/api/resume``, ``/api/sync-anyway`` and ``/api/quarantine/{sha}/release``. Each answers JSON
(202), or sends the page's plain HTML forms back to the page (303)."""

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

    async def _authorize(self, request: web.Request) -> web.Response | None:
        """None when the request carries the API token (``Authorization: Bearer``, or a
        ``token`` form field: the page's way, which leaves the Authorization header to a
        proxy's basic auth); else the error response."""
        if self._token is None:
            return error(403, "the API is read-only: no token configured (http.token_file)")
        given = bearer_token(request.headers.get("Authorization"))
        if given is None and request.content_type == "application/x-www-form-urlencoded":
            given = str((await request.post()).get("token", "")).strip() or None
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
            return response
        lease = self.agent.status.lease
        if lease is not None and not lease.holding:  # it would change only this agent's memory
            where = f" on {lease.node}" if lease.node else ""
            return error(
                409,
                f"this agent is on standby ({lease.why or 'another agent acts'}): "
                f"ask the acting agent{where}",
            )
        return None

    def _done(self, request: web.Request, message: str, **extra: Any) -> web.Response:
        if request.content_type == "application/x-www-form-urlencoded" and "text/html" in (
            request.headers.get("Accept", "")
        ):
            raise web.HTTPSeeOther(location="../" * (request.path.count("/") - 1))
        return as_json({"ok": True, "message": message, **extra}, status=202)

    async def sync(self, request: web.Request) -> web.Response:
        denied = await self._authorize(request)
        if denied:
            return denied
        queued = await self.agent.request_sync("manual")
        message = "pass queued" if queued else "a pass is already queued"
        return self._done(request, message, queued=queued)

    async def _field(self, request: web.Request, name: str) -> str | web.Response:
        """One text field of the request: from a form (the page's), or a JSON body
        ``{"<name>": "..."}`` (optional); a 400 response when the body is not that."""
        if request.content_type == "application/x-www-form-urlencoded":
            return str((await request.post()).get(name, "")).strip()
        if request.content_type != "application/json" or not request.can_read_body:
            return ""
        refusal = error(400, f'the body must be JSON: {{"{name}": "..."}}')
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return refusal
        if not isinstance(body, dict) or not isinstance(body.get(name, ""), str):
            return refusal
        return str(body.get(name, "")).strip()

    async def pause(self, request: web.Request) -> web.Response:
        denied = await self._authorize(request)
        if denied:
            return denied
        reason = await self._field(request, "reason")
        if isinstance(reason, web.Response):
            return reason
        reason = reason[:500] or "paused from the status page"
        await self.agent.pause(reason)
        logger.warning("applying paused through the API from {}: {}", request.remote, reason)
        return self._done(request, "applying paused", paused=True)

    async def resume(self, request: web.Request) -> web.Response:
        denied = await self._authorize(request)
        if denied:
            return denied
        await self.agent.resume()
        logger.info("applying resumed through the API from {}", request.remote)
        return self._done(request, "applying resumed", paused=False)

    async def sync_anyway(self, request: web.Request) -> web.Response:
        """Let one revision be applied outside the sync windows: ``revision`` (a sha, or a
        prefix of the branch head), or the branch head as the agent last fetched it."""
        denied = await self._authorize(request)
        if denied:
            return denied
        sha = await self._field(request, "revision")
        if isinstance(sha, web.Response):
            return sha
        sha = sha.lower()
        if sha and not (4 <= len(sha) <= 64 and all(c in "0123456789abcdef" for c in sha)):
            return error(400, "give a commit sha (hex), or nothing for the branch head")
        allowed = await self.agent.sync_anyway(sha or None)
        if allowed is None:
            head = self.agent.status.desired
            known = f"the branch head is {head.short}" if head else "no fetch yet"
            return error(409, f"cannot tell which revision to let through ({known}): give its sha")
        logger.warning(
            "sync anyway: {} let through the sync windows through the API from {}",
            allowed[:12],
            request.remote,
        )
        message = f"{allowed[:12]} may be applied outside the sync windows; pass queued"
        return self._done(request, message, revision=allowed)

    async def release(self, request: web.Request) -> web.Response:
        denied = await self._authorize(request)
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
