"""Where a pass's rollout stands, for people: which wave, each canary's step and what its
analyses measured, and why the rollout stopped if it did (a value of the status; pure).

The engine replaces it as the rollout goes (``PassContext``'s canary and wave reports); the last
one stays in the status after the pass, so the page still says why a release was stopped."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from reconciler.analysis import AnalysisRun, Outcome


@dataclass(frozen=True)
class AnalysisStatus:
    name: str
    condition: str  # ``result < 0.05``
    value: float | None  # the last measurement's (None: it had none)
    detail: str  # why it had none, or what the source said
    outcome: str | None  # the last measurement's: successful, failed, inconclusive
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    failure_limit: int = 0
    summary: str = ""


@dataclass(frozen=True)
class CanaryStatus:
    service: str
    step: str  # waiting, analysing, passed, failed, inconclusive
    message: str
    analyses: tuple[AnalysisStatus, ...] = ()


@dataclass(frozen=True)
class RolloutStatus:
    wave: int = 0  # 1-based; 0: not started
    waves: int = 0
    services: tuple[str, ...] = ()  # the wave's changed services
    canaries: tuple[CanaryStatus, ...] = ()
    stopped: str = ""  # why the rollout stopped, when it did

    def in_wave(self, wave: int, waves: int, services: tuple[str, ...]) -> RolloutStatus:
        return replace(self, wave=wave, waves=waves, services=services)

    def with_canary(self, canary: CanaryStatus) -> RolloutStatus:
        others = tuple(c for c in self.canaries if c.service != canary.service)
        return replace(self, canaries=(*others, canary))


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: they show as no value (the detail says why)."""
    return value if value is not None and math.isfinite(value) else None


def analysis_status(run: AnalysisRun) -> AnalysisStatus:
    last = run.measurements[-1] if run.measurements else None
    return AnalysisStatus(
        name=run.spec.name,
        condition=str(run.spec.success),
        value=_finite(last.value) if last else None,
        detail=last.detail if last else "",
        outcome=last.outcome.value if last else None,
        successful=run.count(Outcome.SUCCESSFUL),
        failed=run.count(Outcome.FAILED),
        inconclusive=run.count(Outcome.INCONCLUSIVE),
        failure_limit=run.spec.failure_limit,
        summary=run.summary(),
    )


def canary_status(
    service: str, step: str, message: str, runs: tuple[AnalysisRun, ...]
) -> CanaryStatus:
    return CanaryStatus(service, step, message, tuple(analysis_status(r) for r in runs))
