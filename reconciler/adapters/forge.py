"""GitHub's and GitLab's APIs (aiohttp): the pull (merge) request that proposes a revert when the
branch takes no direct pushes. What is sent and what the answers mean is in
:mod:`reconciler.forges` (pure); this module sends it and translates every failure once:

* unreachable, no answer within ``forge.timeout``, 5xx, 429 or a rate limit → ``ForgeUnavailable``
  (retried: the journal keeps the pass in its revert);
* 401, 403, 404, a 422 that is not "already exists", an answer that is not what the forge
  documents → ``ForgeError`` (the revert stalls, with the forge's words and what to check);
* "a request is open for the branch already" → that request is looked up and used.

The token is read from ``forge.token_file`` once, registered with the agent's ``Masker`` and sent
only in a header; every message is masked.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from loguru import logger
from yarl import URL

from reconciler.config import ForgeConfig, read_secret
from reconciler.errors import ForgeError, ForgeUnavailable
from reconciler.forges import (
    Call,
    ForgeApi,
    Proposal,
    Request,
    Target,
    already_open,
    answer_words,
    api_for,
    refused,
    transient,
)
from reconciler.masking import Masker


class ForgeRequests:
    """Implements ``reconciler.ports.Forge`` for one repository on GitHub or GitLab."""

    def __init__(self, where: Target, config: ForgeConfig, masker: Masker) -> None:
        if config.token_file is None:  # refused at start-up already
            raise ForgeError("forge.token_file is not set")
        self._token = read_secret(config.token_file)
        masker.register(self._token)
        self._masker = masker
        self._api: ForgeApi = api_for(where)
        self._config = config

    @property
    def _where(self) -> str:
        return f"{self._api.name} at {self._masker.mask(self._api.target.api_url)}"

    async def propose(self, branch: str, base: str, title: str, body: str) -> Proposal:
        """The open request from ``branch`` into ``base``: the one open already, or a new one;
        auto-merge asked for when ``forge.auto_merge`` is on (its failure is reported, not
        raised: the request is open either way)."""
        noun = self._api.noun
        timeout = aiohttp.ClientTimeout(total=self._config.timeout)
        headers = self._api.headers(self._token)
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            found = await self._find(session, branch, base, f"look for an open {noun} for {branch}")
            opened = False
            if found is None:
                found, opened = await self._open(session, branch, base, title, body)
            merging = ""
            if self._config.auto_merge:
                merging = await self._auto_merge(session, found)
        proposal = Proposal(found, opened, merging)
        logger.warning("{} {}", "opened" if opened else "found the open", proposal.note)
        return proposal

    async def _open(
        self, session: aiohttp.ClientSession, branch: str, base: str, title: str, body: str
    ) -> tuple[Request, bool]:
        """The request opened (True), or the one the forge says is open already (False)."""
        doing = f"open the {self._api.noun} for {branch}"
        call = self._api.open(branch, base, title, body)
        status, data = await self._exchange(session, call, doing)
        if status in (200, 201):
            return self._read(data, doing), True
        if already_open(status, data):  # opened meanwhile (or the list missed it): use that one
            found = await self._find(session, branch, base, doing)
            if found is not None:
                return found, False
        raise self._refusal(status, data, doing)

    async def _find(
        self, session: aiohttp.ClientSession, branch: str, base: str, doing: str
    ) -> Request | None:
        data = await self._send(session, self._api.find(branch, base), doing)
        try:
            return self._api.read_open(data)
        except (KeyError, ValueError) as exc:
            raise self._odd(data, doing) from exc

    async def _auto_merge(self, session: aiohttp.ClientSession, request: Request) -> str:
        call = self._api.auto_merge(request, self._config.merge_method)
        try:
            status, data = await self._exchange(session, call, "ask for auto-merge")
        except ForgeUnavailable as exc:
            return f"auto-merge not enabled: {exc.message}"
        words = self._masker.mask(self._api.auto_merged(status, data))
        if words.startswith("auto-merge not enabled"):
            logger.warning("{}: {}", request.url, words)
        return words

    # ---------------------------------------------------------------- one request

    async def _send(self, session: aiohttp.ClientSession, call: Call, doing: str) -> Any:
        """The answer's document when the forge says yes (2xx); raises otherwise."""
        status, data = await self._exchange(session, call, doing)
        if 200 <= status < 300:
            return data
        raise self._refusal(status, data, doing)

    async def _exchange(
        self, session: aiohttp.ClientSession, call: Call, doing: str
    ) -> tuple[int, Any]:
        """Status and document of the forge's answer; ``ForgeUnavailable`` when there is none
        worth reading (unreachable, timed out, failing, rate-limiting)."""
        try:
            async with session.request(
                call.method, URL(call.url, encoded=True), params=call.params, json=call.json
            ) as response:
                status, text = response.status, await response.text(errors="replace")
        except TimeoutError as exc:
            raise self._unavailable(f"no answer within {self._config.timeout:g}s", doing) from exc
        except aiohttp.ClientError as exc:
            raise self._unavailable(f"unreachable: {type(exc).__name__}: {exc}", doing) from exc
        try:
            data: Any = json.loads(text) if text.strip() else None
        except ValueError:
            data = text
        if transient(status, data):
            raise self._unavailable(answer_words(status, data), doing)
        return status, data

    def _unavailable(self, what: str, doing: str) -> ForgeUnavailable:
        return ForgeUnavailable(self._masker.mask(f"cannot {doing}: {self._where} {what}"))

    def _refusal(self, status: int, data: Any, doing: str) -> ForgeError:
        message = self._masker.mask(refused(self._api, status, data, doing))
        return ForgeError(message, detail=self._masker.mask(json.dumps(data)[:4000]))

    def _read(self, data: Any, doing: str) -> Request:
        try:
            return self._api.read(data)
        except (KeyError, ValueError) as exc:
            raise self._odd(data, doing) from exc

    def _odd(self, data: Any, doing: str) -> ForgeError:
        return ForgeError(
            self._masker.mask(
                f"cannot {doing}: {self._where} answered what its API does not document: "
                f"{json.dumps(data)[:300]}"
            )
        )
