"""The notifications ``Component``: reads each channel's URL from its file, registers the
channels with the agent and runs their delivery workers for as long as the agent runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from loguru import logger

import reconciler
from reconciler.config import Config
from reconciler.config_sections import NotifyConfig
from reconciler.control import AgentControl
from reconciler.errors import ConfigError
from reconciler.links import RepoLinks
from reconciler.masking import Masker
from reconciler.notify.channel import Channel, Policy

KINDS = ("slack", "discord", "webhook")


def read_url(path: Path, what: str, masker: Masker) -> str:
    try:
        url = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} URL file {path}: {exc.strerror}") from exc
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"the {what} URL file {path} does not hold an http(s) URL")
    masker.register(url)
    return url


class Notifications:
    """``Component`` named ``notify``."""

    name = "notify"

    def __init__(
        self,
        settings: NotifyConfig,
        *,
        repo: RepoLinks,
        status_url: str = "",
        masker: Masker | None = None,
    ) -> None:
        self.masker = masker or Masker()
        self.settings = settings
        self.repo = repo
        self.status_url = status_url
        self.channels: list[Channel] = []
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(cls, config: Config, masker: Masker | None = None) -> Notifications:
        return cls(
            config.notify,
            repo=RepoLinks.from_url(config.git.url, config.git.commit_url),
            status_url=config.http.public_url,
            masker=masker,
        )

    @property
    def configured(self) -> bool:
        return any(getattr(self.settings, f"{kind}_url_file") for kind in KINDS)

    def _build(self) -> list[Channel]:
        s = self.settings
        policy = Policy(
            on_success=s.on_success,
            on_drift_corrected=s.on_drift_corrected,
            dedup_window=s.dedup_window,
            retries=max(0, s.retries),
            backoff=s.backoff,
            max_backoff=s.max_backoff,
            timeout=s.timeout,
        )
        channels = []
        for kind in KINDS:
            path: Path | None = getattr(s, f"{kind}_url_file")
            if path is None:
                continue
            channels.append(
                Channel(
                    kind,
                    kind,
                    read_url(path, kind, self.masker),
                    repo=self.repo,
                    policy=policy,
                    masker=self.masker,
                    status_url=self.status_url,
                    username=s.username,
                )
            )
        return channels

    async def start(self, agent: AgentControl) -> None:
        self.channels = self._build()  # a bad URL file stops the start with a ConfigError
        if not self.channels:
            return
        self._session = aiohttp.ClientSession(
            headers={"User-Agent": f"driftless-reconciler/{reconciler.__version__}"}
        )
        for channel in self.channels:
            channel.start(agent, self._session)
            agent.add_notifier(channel)
        logger.info(
            "notifications to {} (success {}, dedup window {:.0f}s)",
            ", ".join(c.name for c in self.channels),
            "on" if self.settings.on_success else "off",
            self.settings.dedup_window,
        )

    async def stop(self) -> None:
        await asyncio.gather(*(channel.drain(grace=5.0) for channel in self.channels))
        if self._session is not None:
            await self._session.close()
            self._session = None
