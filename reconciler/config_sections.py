"""Configuration sections about the agent's surroundings: its HTTP server, its notifications,
and where it keeps its state. Part of :class:`reconciler.config.Config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class HttpConfig:
    bind: str = "127.0.0.1"
    port: int = 9480
    #: bearer token for POST /api/sync, /api/pause, /api/resume (no file: the API is read-only)
    token_file: Path | None = None
    #: GitHub push webhook secret (X-Hub-Signature-256); no file: /hooks/github is off
    webhook_secret_file: Path | None = None
    #: GitLab push webhook secret token (X-Gitlab-Token); no file: /hooks/gitlab is off
    gitlab_token_file: Path | None = None
    #: where people reach the status page (behind Nginx); linked from chat messages
    public_url: str = ""
    #: the status page refreshes itself this often
    refresh: float = 5.0
    #: /healthz is 503 when a pass runs longer than this (0 = derived from the timeouts)
    stuck_after: float = 0.0
    #: the other environments' agents (name → their page's URL), shown side by side
    environments: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NotifyConfig:
    slack_url_file: Path | None = None
    discord_url_file: Path | None = None
    webhook_url_file: Path | None = None
    #: announce successful deploys (failures, reverts, stalls, recoveries are always announced)
    on_success: bool = True
    #: announce drift that self-heal corrected (drift left in place is always announced)
    on_drift_corrected: bool = False
    #: the same alert is not repeated within this window
    dedup_window: float = 3600.0
    retries: int = 4
    backoff: float = 2.0
    max_backoff: float = 60.0
    timeout: float = 10.0
    username: str = "Driftless"


@dataclass(frozen=True)
class StateConfig:
    #: file: ``state_dir`` on this host, one agent by flock (one VM, the systemd unit);
    #: swarm: in the Swarm, readable from every manager, one writer by lease (the agent as a
    #: Swarm service on the managers, reconciler.lease)
    store: str = "file"
    #: swarm: another agent takes the lease after seeing it unchanged this long
    lease_duration: float = 15.0
    #: swarm: this agent's name in the lease (default: $DRIFTLESS_TASK, else the host's name)
    holder: str = ""
    #: swarm: the node shown for it (default: $DRIFTLESS_NODE, else the host's name)
    node: str = ""
