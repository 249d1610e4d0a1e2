"""What the page shows about the agent and its source, gathered from the configuration."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.config import Config
from reconciler.links import RepoLinks
from reconciler.windows import SyncWindow


@dataclass(frozen=True)
class Site:
    stack: str
    environment: str
    repo: RepoLinks
    branch: str
    path: str
    interval: float = 60.0
    self_heal: bool = True
    dry_run: bool = False
    #: /healthz: a pass running longer than this is stuck
    stuck_after: float = 1800.0
    #: the sync windows (``sync.windows``): when changes may be applied
    windows: tuple[SyncWindow, ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> Site:
        t = config.timeouts
        # fetch + apply + verify + rollback + the revert's fetch and push, and a margin; a revert
        # proposed in a pull request: the branch's lookup, fetch and push, the forge's 3 requests
        derived = 3 * config.git.timeout + t.apply + t.verify + t.rollback + 120.0
        if config.git.revert_via != "push":
            derived += 3 * config.git.timeout + 3 * config.forge.timeout
        return cls(
            stack=config.stack,
            environment=config.environment,
            repo=RepoLinks.from_url(config.git.url, config.git.commit_url),
            branch=config.git.branch,
            path=config.git.path,
            interval=config.sync.interval,
            self_heal=config.sync.self_heal,
            dry_run=config.sync.dry_run,
            stuck_after=config.http.stuck_after or derived,
            windows=config.sync.windows,
        )
