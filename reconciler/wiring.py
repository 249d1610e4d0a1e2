"""The composition root: the one place that builds the adapters from the configuration, hands
them to the engine as :class:`~reconciler.engine.Ports`, and closes them.

Used by the daemon and by every command of the CLI::

    async with open_engine(config) as engine:
        agent = Agent(engine, components=[...])
        await agent.run()

Tests give their own ports (fakes, or the real adapters built differently) with ``ports=``; the
rest (state store, masker, the probe cleanup) stays the same.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from reconciler.adapters.clock import SystemClock
from reconciler.adapters.compose_merge import cli_merge
from reconciler.adapters.folder import LocalFolder, repo_root
from reconciler.adapters.forge import ForgeRequests
from reconciler.adapters.git import GitRepo
from reconciler.adapters.git_promote import PromotionRepo
from reconciler.adapters.http import HttpChecker
from reconciler.adapters.probes import ProbeProxies, remove_probes
from reconciler.adapters.prometheus import PrometheusQueries
from reconciler.adapters.sops import SopsDecryptor
from reconciler.adapters.swarm import SwarmAdapter
from reconciler.adapters.swarm_state import SwarmState
from reconciler.adapters.swarm_store import SwarmStore
from reconciler.config import Config
from reconciler.engine import Ports
from reconciler.engine.verify import network_name
from reconciler.errors import ConfigError, DockerError
from reconciler.forges import target
from reconciler.leadership import Leadership
from reconciler.masking import Masker
from reconciler.ports import Clock
from reconciler.state import StateStore
from reconciler.store import Store


@dataclass(frozen=True)
class Engine:
    """Everything a pass runs with, opened for as long as the ``async with`` lasts."""

    config: Config
    ports: Ports
    store: Store
    masker: Masker
    #: removes probe containers an earlier run left behind (None: nothing to clean)
    cleanup: Callable[[], Awaitable[None]] | None = None
    #: the lease that lets this agent act (``state.store: swarm``); None: it always may
    leadership: Leadership | None = None


@contextlib.asynccontextmanager
async def open_engine(
    config: Config,
    *,
    masker: Masker | None = None,
    ports: Ports | None = None,
    scratch: Path | None = None,
    folder: Path | None = None,
) -> AsyncIterator[Engine]:
    """``scratch``: check out and render there, leaving the state directory alone (a preview
    beside a running agent); ``folder``: take the desired state from this folder on disk instead
    of the git remote."""
    masker = masker or Masker()
    if ports is not None:
        yield Engine(config, ports, StateStore(scratch or config.state_dir), masker)
        return
    clock = SystemClock()
    swarm = SwarmAdapter(
        clock=clock,
        masker=masker,
        cli=config.docker.cli,
        host=config.docker.host,
        images_checked=config.docker.preflight_images,
    )
    store: Store = StateStore(scratch or config.state_dir)
    leadership = None
    if config.state.store == "swarm" and scratch is None:
        store, leadership = _swarm_store(config, SwarmState(swarm.client, config.stack), clock)
    git: GitRepo | LocalFolder
    if folder is not None:
        git = LocalFolder(repo_root(folder), folder)
    else:
        git = GitRepo(config.git, store.dir / "checkout", masker)

    def probes() -> ProbeProxies:
        return ProbeProxies(
            swarm,
            stack=config.stack,
            image=config.health.probe_image,
            network=network_name(config.stack, config.health.probe_network or None) or "",
            labels=config.docker.probe_labels,
        )

    async def cleanup() -> None:
        with contextlib.suppress(DockerError):
            removed = await remove_probes(swarm, config.stack)
            if removed:
                logger.info("removed {} probe container(s) left by an earlier run", removed)

    checker = HttpChecker(clock, masker, request_timeout=config.health.request_timeout)
    ports = Ports(git, swarm, checker, clock, probes, **_optional(config, store, masker))
    try:
        yield Engine(config, ports, store, masker, cleanup, leadership)
    finally:
        await swarm.close()
        if isinstance(git, GitRepo):
            git.close()


def state_store(config: Config) -> Store:
    """The store as the CLI reads it (``reconciler status``, ``diff``), outside the daemon."""
    if config.state.store != "swarm":
        return StateStore(config.state_dir)
    swarm = SwarmAdapter(clock=SystemClock(), masker=Masker(), host=config.docker.host)
    return SwarmStore(SwarmState(swarm.client, config.stack), config.state_dir)


def _swarm_store(config: Config, state: SwarmState, clock: Clock) -> tuple[SwarmStore, Leadership]:
    """The state kept in the Swarm, and the lease this agent must hold to write it: named after
    its Swarm task (``DRIFTLESS_TASK``) or host, with a suffix new at every start."""
    host = socket.gethostname()
    me = config.state.holder or os.environ.get("DRIFTLESS_TASK") or host
    node = config.state.node or os.environ.get("DRIFTLESS_NODE") or host
    leadership = Leadership(
        state,
        me=f"{me}/{secrets.token_hex(3)}",
        node=node,
        duration=config.state.lease_duration,
        now=clock.now,
    )
    return SwarmStore(state, config.state_dir), leadership


def _optional(config: Config, store: Store, masker: Masker) -> dict[str, Any]:
    """The ports a configuration may leave out: Prometheus, the forge, the promotion's push,
    SOPS decryption; and the docker CLI that merges a stack file with its base."""
    key = config.render.sops_age_key_file
    return {
        "metrics": _metrics(config, masker),
        "forge": _forge(config, masker),
        "merge": cli_merge(config.docker.cli),
        "promoter": _promoter(config, store, masker),
        "decryptor": SopsDecryptor(key) if key is not None else None,
    }


def _metrics(config: Config, masker: Masker) -> PrometheusQueries | None:
    """The canaries' Prometheus (None: no analysis can measure anything)."""
    analysis = config.analysis
    if not analysis.prometheus_url:
        return None
    return PrometheusQueries(analysis.prometheus_url, masker, timeout=analysis.timeout)


def _promoter(config: Config, store: Store, masker: Masker) -> PromotionRepo | None:
    """Pushes promotions to their branches, when ``promote.path`` names the next environment."""
    if not config.promote.path:
        return None
    return PromotionRepo(config.git, store.dir / "promotion", masker)


def _forge(config: Config, masker: Masker) -> ForgeRequests | None:
    """The forge that opens the pull (merge) requests of reverts, when ``git.revert_via`` asks
    for one (its settings were checked at start-up)."""
    promotes = bool(config.promote.path) and config.promote.pull_request
    if config.git.revert_via not in ("pull_request", "auto") and not promotes:
        return None
    forge = config.forge
    where = target(forge.kind, forge.api_url, forge.repository, config.git.url)
    if isinstance(where, str):
        raise ConfigError(f"invalid configuration: {where}")
    return ForgeRequests(where, forge, masker)
