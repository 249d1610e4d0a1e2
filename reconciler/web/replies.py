"""The JSON answers of the API and the webhooks: indented (one space), and errors as
``{"ok": false, "error": "..."}``."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def as_json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, indent=1))


def error(status: int, message: str) -> web.Response:
    return as_json({"ok": False, "error": message}, status=status)
