"""The server's push webhooks: ``POST /hooks/github`` (HMAC ``X-Hub-Signature-256``) and
``POST /hooks/gitlab`` (``X-Gitlab-Token``). A push to the watched branch wakes the loop for a
pass; anything else is answered and ignored. Each delivery is counted by its outcome."""

from __future__ import annotations

import json

from aiohttp import web
from loguru import logger

from reconciler.control import AgentControl
from reconciler.web.auth import SecretFile, github_signature_ok, same
from reconciler.web.metrics import ServerMetrics
from reconciler.web.replies import as_json, error


class Hooks:
    """The webhook handlers of one running server; a secret None: that webhook is off."""

    def __init__(
        self,
        agent: AgentControl,
        branch: str,
        metrics: ServerMetrics,
        *,
        github: SecretFile | None,
        gitlab: SecretFile | None,
    ) -> None:
        self.agent = agent
        self.branch = branch
        self.metrics = metrics
        self._github = github
        self._gitlab = gitlab

    async def github(self, request: web.Request) -> web.Response:
        if self._github is None:
            return error(403, "GitHub webhooks are not configured (http.webhook_secret_file)")
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
            return error(401, "invalid or missing X-Hub-Signature-256")
        event = request.headers.get("X-GitHub-Event", "")
        delivery = request.headers.get("X-GitHub-Delivery", "-")
        if event == "ping":
            self.metrics.webhook("github", "ignored")
            return as_json({"ok": True, "message": "pong"})
        return await self._push("github", event == "push", body, delivery)

    async def gitlab(self, request: web.Request) -> web.Response:
        if self._gitlab is None:
            return error(403, "GitLab webhooks are not configured (http.gitlab_token_file)")
        given = request.headers.get("X-Gitlab-Token")
        if not given or not same(given, self._gitlab.value):
            self.metrics.webhook("gitlab", "rejected")
            logger.warning("refused a GitLab webhook from {}: bad token", request.remote)
            return error(401, "invalid or missing X-Gitlab-Token")
        body = await request.read()
        event = request.headers.get("X-Gitlab-Event", "")
        delivery = request.headers.get("X-Gitlab-Event-UUID", "-")
        return await self._push("gitlab", event == "Push Hook", body, delivery)

    async def _push(self, source: str, is_push: bool, body: bytes, delivery: str) -> web.Response:
        watched = f"refs/heads/{self.branch}"
        if not is_push:
            self.metrics.webhook(source, "ignored")
            return as_json({"ok": True, "message": "not a push event: ignored"}, status=202)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            self.metrics.webhook(source, "rejected")
            return error(400, "the payload is not JSON")
        ref = payload.get("ref") if isinstance(payload, dict) else None
        if ref != watched:
            self.metrics.webhook(source, "ignored")
            return as_json(
                {"ok": True, "message": f"push to {ref}, watching {watched}: ignored"}, status=202
            )
        queued = await self.agent.request_sync("webhook")
        self.metrics.webhook(source, "accepted")
        after = str(payload.get("after") or "")[:12]
        logger.info("{} push webhook {} for {} at {}: pass requested", source, delivery, ref, after)
        return as_json(
            {
                "ok": True,
                "message": "pass queued" if queued else "a pass is already queued",
                "queued": queued,
            },
            status=202,
        )
