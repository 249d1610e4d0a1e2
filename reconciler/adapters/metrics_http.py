"""A minimal HTTP endpoint for the agent: ``/metrics`` (Prometheus) and ``/healthz``.

It is a ``Component``; the status page / JSON API server may replace it (and serve ``/metrics``
itself from ``agent.metrics_registry``) by taking its place in ``reconciler.cli._components``.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from reconciler.control import AgentControl
from reconciler.status import ConditionType


class MetricsServer:
    name = "metrics-http"

    def __init__(self, bind: str, port: int) -> None:
        self._bind = bind
        self._port = port
        self._runner: web.AppRunner | None = None
        self._agent: AgentControl | None = None

    async def _metrics(self, request: web.Request) -> web.Response:
        assert self._agent is not None
        body = generate_latest(self._agent.metrics_registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        assert self._agent is not None
        status = self._agent.status
        return web.json_response(
            {
                "status": "ok",
                "ready": status.is_true(ConditionType.READY),
                "phase": status.phase.value if status.phase else None,
            }
        )

    async def start(self, agent: AgentControl) -> None:
        self._agent = agent
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._bind, self._port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
