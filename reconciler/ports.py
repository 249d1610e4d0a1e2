"""The small protocols between the pipeline and the outside world. The adapters in
``reconciler.adapters`` implement them against the real thing; tests may pass fakes for the
parts that cannot run (and must say so)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from reconciler.analysis import Answer
from reconciler.forges import Proposal
from reconciler.models import CheckResult, HealthCheck, LiveState, RevisionInfo
from reconciler.placement import Node
from reconciler.signatures import Signature
from reconciler.sopsfiles import SealedSecret
from reconciler.task_views import ServiceTasks
from reconciler.types import JSONDict


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class GitSource(Protocol):
    @property
    def workdir(self) -> Path: ...

    async def fetch(self) -> RevisionInfo:
        """Clone or fetch the branch and check out its head; return the head."""
        ...

    async def checkout(self, sha: str) -> RevisionInfo: ...

    async def signatures(
        self, since: str | None, head: str, *, every: bool, also: Sequence[str] = ()
    ) -> tuple[Signature, ...]:
        """git's verdict on the signature of ``head`` (first) and, with ``every``, of each
        commit in ``since..head`` that touches the desired-state folder (or the ``also``
        paths: the folders of the bases its stack file extends)."""
        ...

    async def offending_commits(
        self, good: str | None, bad: str, *, also: Sequence[str] = ()
    ) -> tuple[RevisionInfo, ...]:
        """Commits in ``good..bad`` that touch the desired-state folder (or the ``also``
        paths), newest first."""
        ...

    async def find_revert(self, sha: str) -> str | None:
        """The revert commit the agent already pushed for ``sha``, if any (remote history)."""
        ...

    async def revert(
        self, commits: Sequence[RevisionInfo], failed: RevisionInfo, subject: str, body: str
    ) -> str | None:
        """Revert ``commits`` on top of the remote branch and push; the new commit, or None
        when there was nothing left to revert. ``BranchProtected`` when the branch takes no
        direct pushes."""
        ...

    async def propose(
        self,
        commits: Sequence[RevisionInfo],
        failed: RevisionInfo,
        subject: str,
        body: str,
        branch: str,
    ) -> str | None:
        """The same revert, pushed to ``branch`` (for a pull request) instead; the commit there
        (the one an earlier run pushed, when there is one), or None when there was nothing left
        to revert."""
        ...


class Forge(Protocol):
    """GitHub or GitLab: the pull (merge) request that proposes a revert."""

    async def propose(self, branch: str, base: str, title: str, body: str) -> Proposal:
        """The request open from ``branch`` into ``base``: one open already, or a new one."""
        ...


class Promoter(Protocol):
    """Pushes the commit of a promotion to a branch of its own (``reconciler.promotion``)."""

    async def push_branch(
        self, branch: str, files: Mapping[str, str], message: str, sha: str
    ) -> str: ...


class Swarm(Protocol):
    async def live_state(self, stack: str) -> LiveState: ...

    async def image_digest(self, image: str) -> str | None:
        """The digest the image's registry gives for the reference now; None: it has none."""
        ...

    async def missing_objects(
        self, secrets: Sequence[str], configs: Sequence[str], networks: Sequence[str]
    ) -> list[str]: ...

    async def nodes(self) -> list[Node]:
        """Every node of the Swarm, whatever its state (pre-flight's placement check)."""
        ...

    async def create_secrets(self, stack: str, secrets: Sequence[SealedSecret]) -> list[str]:
        """Create each secret that does not exist yet (labelled as the stack's, and with
        ``driftless.sops``); the names created."""
        ...

    async def prune_secrets(self, stack: str, keep: Collection[str]) -> list[str]:
        """Remove the stack's ``driftless.sops`` secrets that are not in ``keep`` and that no
        service uses (one still in use is left); the names removed."""
        ...

    async def validate_compose(self, path: Path) -> None: ...

    async def deploy(self, stack: str, compose: Path, *, prune: bool, time_limit: float) -> str: ...

    async def wait_converged(
        self,
        stack: str,
        services: Sequence[str],
        *,
        since: datetime,
        time_limit: float,
        expected_gone: Sequence[str] = (),
    ) -> dict[str, CheckResult]: ...

    async def restore(
        self, stack: str, previous: Mapping[str, JSONDict | None], *, time_limit: float
    ) -> None: ...

    async def tasks(self, stack: str, service: str) -> ServiceTasks:
        """The service's rolling update and its tasks, one by one, now."""
        ...


class MetricsSource(Protocol):
    """Answers the canary's analysis queries (Prometheus)."""

    async def query(self, promql: str, proxy: str | None = None) -> Answer:
        """The query's one number, or ``None`` and why; never raises for the source's sake."""
        ...

    async def check(self, promql: str, proxy: str | None = None) -> str | None:
        """Why the source refuses the query (it does not parse), or None."""
        ...


class ProxyProvider(Protocol):
    """Gives the URL of an HTTP proxy that reaches into a Swarm network."""

    async def proxy_for(self, network: str) -> str: ...

    async def close(self) -> None: ...


class HealthChecker(Protocol):
    async def run(
        self, checks: Sequence[HealthCheck], proxies: ProxyProvider | None = None
    ) -> list[CheckResult]:
        """Each check retried within its timeout (then its soak); a definitive failure ends it."""
        ...

    async def once(
        self, checks: Sequence[HealthCheck], proxies: ProxyProvider | None = None
    ) -> list[CheckResult]:
        """One attempt of each check."""
        ...
