"""The pure core's values: desired state, live state, plan and check results.

All frozen dataclasses, no I/O. ``to_jsonable`` (reconciler.serialize) turns any of them into JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from reconciler.analysis import AnalysisSpec
from reconciler.rollout import RolloutSpec
from reconciler.sopsfiles import SealedSecret
from reconciler.types import JSONDict


class Phase(StrEnum):
    """The phases of one pass, in order (rollback/revert only on failure)."""

    FETCH = "fetch"
    RENDER = "render"
    PREFLIGHT = "preflight"
    PLAN = "plan"
    APPLY = "apply"
    VERIFY = "verify"
    ROLLBACK = "rollback"
    REVERT = "revert"
    RECORD = "record"


class PassResult(StrEnum):
    """How a pass ended (label ``result`` of ``reconciler_passes_total``)."""

    SUCCESS = "success"  # changes applied and verified
    NOOP = "noop"  # live already equal to desired (or drift reported with self-heal off)
    REFUSED = "refused"  # invalid / missing image / quarantined: live untouched
    ROLLED_BACK = "rolled_back"  # verify failed; every changed service is back
    FAILED = "failed"  # apply failed, or the rollback or revert failed (stalled)
    ERROR = "error"  # the pass could not run (git or Docker unreachable, internal error)


@dataclass(frozen=True)
class RevisionInfo:
    """A git commit of the desired state."""

    sha: str
    subject: str = ""
    author: str = ""
    committed_at: datetime | None = None
    #: who signed it, when signatures are verified (``git.verify``)
    signed_by: str = ""

    @property
    def short(self) -> str:
        return self.sha[:12]


# ------------------------------------------------------------------ desired state


@dataclass(frozen=True)
class HealthCheck:
    """An HTTP check run after a change (from ``driftless.health.*`` labels or the config).

    ``network`` is the full Swarm network name to probe through (a short-lived probe container
    attached to it), or ``None`` to request ``url`` directly from the agent.
    """

    name: str
    url: str
    expect_status: tuple[int, ...] = (200,)
    expect_version: str | None = None
    timeout: float = 60.0
    soak: float = 0.0
    interval: float = 2.0
    network: str | None = None
    service: str | None = None  # None for a global check


@dataclass(frozen=True)
class PortSpec:
    target: int
    published: int | None
    protocol: str = "tcp"
    mode: str = "ingress"

    def __str__(self) -> str:
        pub = "" if self.published is None else f"{self.published}:"
        return f"{pub}{self.target}/{self.protocol} ({self.mode})"


@dataclass(frozen=True)
class ServiceFields:
    """The comparable view of one service, the same shape whether read from the compose file or
    from the live Swarm spec. ``None`` means "not declared": the plan does not compare it."""

    image: str
    mode: str = "replicated"  # replicated | global | replicated-job | global-job
    replicas: int | None = 1
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    container_labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[PortSpec, ...] = ()
    resources: Mapping[str, int] = field(default_factory=dict)
    update_config: Mapping[str, str] = field(default_factory=dict)
    rollback_config: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    # what a person can also change by hand (``docker service update --network-add``,
    # ``--secret-add``, ``--mount-add``, ``--constraint-add``, ``--health-cmd``): each the whole
    # set, Swarm's names; ``None`` where a side cannot tell (then it is not compared)
    networks: tuple[str, ...] | None = None
    secrets: tuple[str, ...] | None = None
    configs: tuple[str, ...] | None = None
    mounts: tuple[str, ...] | None = None  # "type source target ro|rw"; source "*" = any
    placement: tuple[str, ...] | None = None  # constraints, "spread=…", "max_replicas=N"
    healthcheck: str | None = None  # "" = none in the spec (the image's own applies)


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the rendered desired state."""

    name: str  # the name in the stack file, e.g. ``api`` (Swarm: ``<stack>_api``)
    image: str
    spec_hash: str  # hash of the rendered definition, stamped as ``driftless.spec-hash``
    fields: ServiceFields
    definition: JSONDict  # the rendered compose service, as given to docker stack deploy
    health: HealthCheck | None = None
    rollout: RolloutSpec = field(default_factory=RolloutSpec)
    analyses: tuple[AnalysisSpec, ...] = ()  # the canary's analyses (analysis.yaml)


@dataclass(frozen=True)
class DesiredState:
    stack: str
    environment: str
    services: tuple[ServiceSpec, ...]
    document: JSONDict  # the whole rendered compose document (before stamping)
    desired_hash: str  # hash of the rendered document
    external_secrets: tuple[str, ...] = ()
    external_configs: tuple[str, ...] = ()
    external_networks: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: the services in the order their changes roll out (``driftless.rollout.after``)
    waves: tuple[tuple[str, ...], ...] = ()
    #: secrets decrypted from SOPS files: created by the agent before the deploy (not external
    #: in the user's sense, so pre-flight does not look for them); their values are in memory
    #: only, never in ``repr``, a serialized value or the document
    sealed_secrets: tuple[SealedSecret, ...] = field(default=(), repr=False, compare=False)

    def service(self, name: str) -> ServiceSpec | None:
        return next((s for s in self.services if s.name == name), None)

    @property
    def images(self) -> tuple[str, ...]:
        return tuple(sorted({s.image for s in self.services}))


# ------------------------------------------------------------------ live state


@dataclass(frozen=True)
class LiveService:
    name: str  # short name (without the ``<stack>_`` prefix)
    id: str
    version: int
    fields: ServiceFields
    spec_hash: str | None  # the ``driftless.spec-hash`` label, if we applied it
    revision: str | None  # the ``driftless.revision`` label
    replicas_running: int = 0
    replicas_desired: int = 0
    update_state: str | None = None  # Swarm UpdateStatus.State
    spec: JSONDict = field(default_factory=dict)  # raw Swarm spec (what a rollback restores)
    #: the spec before its last update (Swarm keeps it): what a lost journal is rebuilt from
    previous_spec: JSONDict | None = None
    previous_revision: str | None = None  # that spec's ``driftless.revision`` label


@dataclass(frozen=True)
class LiveState:
    stack: str
    services: tuple[LiveService, ...]

    def service(self, name: str) -> LiveService | None:
        return next((s for s in self.services if s.name == name), None)


# ------------------------------------------------------------------ plan


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REMOVE = "remove"  # only with prune on
    UNCHANGED = "unchanged"
    ORPHAN = "orphan"  # live but no longer in git; kept because prune is off


class Cause(StrEnum):
    NEW = "new"  # not live yet
    DEFINITION = "definition"  # git changed it
    DRIFT = "drift"  # someone changed the live service
    GONE = "gone"  # removed from git
    NONE = "none"


@dataclass(frozen=True)
class FieldDiff:
    field: str  # dotted path, e.g. ``image``, ``env.LOG_LEVEL``, ``update_config.order``
    desired: str | None
    live: str | None

    def __str__(self) -> str:
        return f"{self.field}: {self.live!s} -> {self.desired!s}"


@dataclass(frozen=True)
class ServiceChange:
    service: str
    action: Action
    cause: Cause
    diffs: tuple[FieldDiff, ...] = ()
    desired_hash: str | None = None
    live_hash: str | None = None


@dataclass(frozen=True)
class Plan:
    stack: str
    changes: tuple[ServiceChange, ...]
    prune: bool = False

    @property
    def to_apply(self) -> tuple[ServiceChange, ...]:
        """Changes that ``docker stack deploy`` makes."""
        return tuple(
            c for c in self.changes if c.action in (Action.CREATE, Action.UPDATE, Action.REMOVE)
        )

    @property
    def empty(self) -> bool:
        return not self.to_apply

    @property
    def drifted(self) -> tuple[ServiceChange, ...]:
        return tuple(c for c in self.changes if c.cause == Cause.DRIFT)

    @property
    def only_drift(self) -> bool:
        return bool(self.to_apply) and all(c.cause == Cause.DRIFT for c in self.to_apply)

    def change(self, service: str) -> ServiceChange | None:
        return next((c for c in self.changes if c.service == service), None)


# ------------------------------------------------------------------ outcomes


@dataclass(frozen=True)
class CheckResult:
    """The result of one health check (Swarm convergence or HTTP)."""

    name: str
    ok: bool
    kind: str = "http"  # http | swarm | registry | engine | gone
    url: str | None = None
    status_code: int | None = None
    output: str = ""  # body excerpt, error text or Swarm task message
    attempts: int = 0
    elapsed_seconds: float = 0.0
    #: a failure no retry can mend: a running task that serves the wrong version
    definitive: bool = False
