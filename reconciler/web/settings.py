"""What the HTTP server needs to know, gathered from the agent's configuration at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.links import RepoLinks


@dataclass(frozen=True)
class WebSettings:
    """The ``http`` section of the agent's configuration (``reconciler/config.example.yaml``)."""

    bind: str = "127.0.0.1"
    port: int = 9480
    #: bearer token for POST /api/sync, /api/pause, /api/resume, /api/quarantine (file content)
    token_file: Path | None = None
    #: GitHub webhook secret (HMAC-SHA256 of the body, ``X-Hub-Signature-256``)
    webhook_secret_file: Path | None = None
    #: GitLab webhook secret token (``X-Gitlab-Token``)
    gitlab_token_file: Path | None = None
    #: the address people reach the page at (behind Nginx): linked from chat messages
    public_url: str = ""
    #: how often the page refreshes itself, seconds
    refresh: float = 5.0
    #: /healthz answers 503 when a pass runs longer than this, or the next pass is this late;
    #: 0 = derived from the sync interval and the phase timeouts
    stuck_after: float = 0.0


@dataclass(frozen=True)
class Site:
    """What the page shows about the source of the desired state."""

    stack: str
    environment: str
    repo: RepoLinks
    branch: str
    path: str
    interval: float = 60.0
    self_heal: bool = True
    dry_run: bool = False
