"""What every phase of a pass shares: the configuration, the ports, the state store, the masker,
and which phase and revision the pass is in (announced to the agent before each phase)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from loguru import logger

from reconciler.analysis import AnalysisRun
from reconciler.canary import Step
from reconciler.config import Config
from reconciler.decisions import Halt, halt_for
from reconciler.desired import RenderOptions, render_options
from reconciler.desired_files import STACK_FILES, Merge, find, watched_paths
from reconciler.errors import InterruptedPass, ReconcilerError
from reconciler.logs import current_phase, current_revision
from reconciler.masking import Masker
from reconciler.models import Phase, RevisionInfo
from reconciler.ports import (
    Clock,
    Forge,
    GitSource,
    HealthChecker,
    MetricsSource,
    Promoter,
    ProxyProvider,
    Swarm,
)
from reconciler.progress import RolloutStatus, canary_status
from reconciler.sopsfiles import Decryptor
from reconciler.store import Store

T = TypeVar("T")
PhaseHook = Callable[[Phase | None, str, RevisionInfo | None], None]
#: the rollout's progress, each time it changes
RolloutHook = Callable[[RolloutStatus], None]

#: phases that change something outside the agent: a stop request waits for them to end
MUTATING = frozenset({Phase.APPLY, Phase.ROLLBACK, Phase.REVERT, Phase.RECORD})


@dataclass(frozen=True)
class Ports:
    """The outside world, behind the protocols of :mod:`reconciler.ports`."""

    git: GitSource
    swarm: Swarm
    checker: HealthChecker
    clock: Clock
    #: makes the probe containers that carry HTTP checks into stack networks (None: none)
    probes: Callable[[], ProxyProvider] | None = None
    #: answers the canaries' analyses (None: no Prometheus configured, they are inconclusive)
    metrics: MetricsSource | None = None
    #: opens the pull (merge) request of a revert (None: ``git.revert_via`` is push)
    forge: Forge | None = None
    #: merges a stack file with the base it extends (the docker CLI; None: it cannot)
    merge: Merge | None = None
    #: pushes a promotion to a branch for its pull request (None: ``promote.path`` unset)
    promoter: Promoter | None = None
    #: decrypts the desired state's SOPS files (None: no age key configured, they are refused)
    decryptor: Decryptor | None = None


class PassContext:
    def __init__(
        self,
        config: Config,
        ports: Ports,
        store: Store,
        masker: Masker,
        on_phase: PhaseHook | None = None,
        on_rollout: RolloutHook | None = None,
    ) -> None:
        self.config = config
        self.ports = ports
        self.store = store
        self.masker = masker
        self._on_phase = on_phase
        self._on_rollout = on_rollout
        self.rollout: RolloutStatus | None = None
        self.phase: Phase | None = None
        self.revision: RevisionInfo | None = None
        self.stop_requested = asyncio.Event()
        #: what was logged once for the agent's life (a tag pushed again, by service and digest)
        self.announced: set[str] = set()

    @property
    def mutating(self) -> bool:
        return self.phase in MUTATING

    def enter(self, phase: Phase, message: str) -> None:
        """Start ``phase``: a stop request ends the pass here unless the phase must finish what
        an earlier one started (apply, verify, rollback, revert, record)."""
        if self.stop_requested.is_set() and phase not in MUTATING | {Phase.VERIFY}:
            raise InterruptedPass(f"stop requested before {phase.value}")
        self.phase = phase
        current_phase.set(phase.value)
        current_revision.set(self.revision.sha if self.revision else None)
        logger.info(message)
        if self._on_phase is not None:
            self._on_phase(phase, message, self.revision)

    def leave(self) -> None:
        """The pass ended (however it ended)."""
        self.phase = None
        current_phase.set(None)
        if self._on_phase is not None:
            self._on_phase(None, "", self.revision)

    def _publish(self, rollout: RolloutStatus) -> None:
        self.rollout = rollout
        if self._on_rollout is not None:
            self._on_rollout(rollout)

    def wave(self, number: int, waves: int, services: tuple[str, ...]) -> None:
        """The rollout enters a wave (1-based)."""
        self._publish((self.rollout or RolloutStatus()).in_wave(number, waves, services))

    def report(
        self, service: str, step: Step, message: str, analyses: tuple[AnalysisRun, ...]
    ) -> None:
        """A canary step's progress, for the status page, the API and the metrics."""
        canary = canary_status(service, step.value, message, analyses)
        self._publish((self.rollout or RolloutStatus()).with_canary(canary))

    def stopped(self, why: str) -> None:
        """The rollout stopped: why (shown with it after the pass)."""
        if self.rollout is not None:
            self._publish(replace(self.rollout, stopped=self.masker.mask(why)))

    def working_on(self, revision: RevisionInfo) -> None:
        self.revision = revision
        current_revision.set(revision.sha)

    def base_folders(self) -> tuple[str, ...]:
        """The folders of the bases the checked-out stack file extends (repository paths):
        commits there change what the environment deploys too."""
        folder = self.ports.git.workdir / self.config.git.path
        stack = find(folder, STACK_FILES)
        try:
            text = stack.read_text(encoding="utf-8") if stack is not None else None
        except (OSError, UnicodeDecodeError):
            text = None
        return tuple(watched_paths(self.config.git.path, text)[1:])

    def render_options(self) -> RenderOptions:
        return render_options(
            self.config,
            self.ports.git.workdir,
            merge=self.ports.merge,
            decryptor=self.ports.decryptor,
        )

    async def attempt(
        self, phase: Phase, work: Callable[[], Awaitable[T]], *, live_changed: bool = False
    ) -> T | Halt:
        """``work()``, or the :class:`Halt` its error calls for (decided by ``halt_for``)."""
        try:
            return await work()
        except InterruptedPass:
            raise
        except ReconcilerError as exc:
            halt = halt_for(phase, exc, live_changed=live_changed)
            logger.error("{}: {}", phase.value, self.masker.mask(exc.message))
            return halt
