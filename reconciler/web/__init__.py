"""The agent's HTTP server: status page, JSON API, push webhooks, ``/metrics``, ``/healthz``."""

from reconciler.web.server import StatusServer
from reconciler.web.settings import Site

__all__ = ["Site", "StatusServer"]
