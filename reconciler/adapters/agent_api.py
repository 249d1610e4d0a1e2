"""The running agent's HTTP API, as a client: what ``reconciler pause``, ``resume``, ``release``
and ``sync-anyway`` call (``POST /api/pause``, ``/api/resume``, ``/api/quarantine/{sha}/release``,
``/api/sync-anyway``, with the bearer token from ``http.token_file``). Errors are translated
here: the agent not answering is a ``WaitingError`` (try again), a refusal a ``ConfigError`` (fix
the token or the request)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from reconciler.errors import ConfigError, WaitingError
from reconciler.masking import Masker


class AgentUnreachable(WaitingError):
    """No agent answers on the API's address."""


@dataclass(frozen=True)
class Reply:
    status: int
    message: str


class AgentApi:
    def __init__(self, base_url: str, token: str, masker: Masker, *, timeout: float = 30) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._masker = masker
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Reply:
        url = f"{self._base}{path}"
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.post(url, json=body or {}, headers=headers) as response,
            ):
                data = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            text = self._masker.mask(f"{type(exc).__name__}: {exc}")
            raise AgentUnreachable(f"no agent answers on {self._base}: {text}") from exc
        except ValueError as exc:  # not JSON: not the agent's API
            raise ConfigError(f"{url} does not answer like the reconciler's API") from exc
        message = (
            str(data.get("message") or data.get("error") or "") if isinstance(data, dict) else ""
        )
        if status in (401, 403):
            raise ConfigError(f"the agent refused the request: {message}")
        return Reply(status, self._masker.mask(message))
