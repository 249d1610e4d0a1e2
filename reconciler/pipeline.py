"""One reconciliation pass, as one straight pipeline:

fetch → render/validate → plan → pre-flight → apply → verify → (rollback → revert) → record

Each phase announces itself (``on_phase``: a progress log line with revision and phase, and the
``phase``/``progress`` of the status) before it starts; each failure ends the pass with one named
reason. The pass returns a ``PassReport``; turning it into status, metrics and events is
``reconciler.record``'s job. Pre-flight runs after the plan so that only images the pass would
actually deploy are looked up in their registries.

Before the first live change the pass writes a journal (``state.Journal``) with the previous
spec of every service it is about to change; a restart after a crash finds it and finishes or
rolls back that pass instead of starting a new one, and never reverts twice (the journal and a
``Driftless-Revert-Of`` trailer in the remote history both say whether a revert was pushed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from loguru import logger

from reconciler.config import Config
from reconciler.desired import RenderOptions, render, stamped_document
from reconciler.errors import (
    DockerError,
    GitError,
    InterruptedPass,
    PreflightError,
    QuarantinedError,
    Reason,
    ReconcilerError,
    RevertError,
    RollbackError,
    ValidationError,
    mask_secrets,
)
from reconciler.interpolate import escape_dollars
from reconciler.logs import current_phase, current_revision, current_stack
from reconciler.models import (
    Action,
    CheckResult,
    DesiredState,
    FieldDiff,
    HealthCheck,
    LiveState,
    PassOutcome,
    PassResult,
    Phase,
    Plan,
    RevisionInfo,
)
from reconciler.plan import describe, inventory, plan
from reconciler.ports import Clock, GitSource, HealthChecker, ProxyProvider, Swarm
from reconciler.state import Journal, StateStore
from reconciler.status import ServiceStatus, Status
from reconciler.types import JSONDict
from reconciler.yamlio import dump

#: phases that change something outside the agent: a stop request waits for them to end
MUTATING = frozenset({Phase.APPLY, Phase.ROLLBACK, Phase.REVERT, Phase.RECORD})


@dataclass(frozen=True)
class PassReport:
    """Everything a pass learnt: the outcome plus what ``record`` needs for the status."""

    outcome: PassOutcome
    trigger: str = "interval"
    desired: RevisionInfo | None = None  # branch head at fetch (None if the fetch failed)
    applied: RevisionInfo | None = None  # what is live now, when the pass knows it
    applied_hash: str | None = None
    inventory: tuple[ServiceStatus, ...] | None = None
    quarantine: bool = False
    reverted: tuple[str, ...] = ()
    drift: dict[str, tuple[FieldDiff, ...]] = field(default_factory=dict)
    drift_corrected: bool = False
    fetch_failed: bool = False
    problems: tuple[str, ...] = ()


def _retrieve(future: asyncio.Future[list[str | BaseException]]) -> None:
    if not future.cancelled():
        future.exception()


def revert_message(
    config: Config,
    failed: RevisionInfo,
    commits: tuple[RevisionInfo, ...],
    reason: str,
    message: str,
    checks: tuple[CheckResult, ...],
) -> tuple[str, str]:
    """Subject and body of the revert commit: what failed and the failed checks' output."""
    if len(commits) == 1:
        subject = f'Revert "{commits[0].subject}"'
    else:
        subject = f"Revert {len(commits)} commits: deploy of {failed.short} failed"
    lines = [
        f"Automatic revert by the Driftless reconciler: deploying {failed.short} to stack "
        f"{config.stack} ({config.environment}) failed and every service changed by it was "
        "rolled back.",
        "",
        f"Reason: {reason}: {message}",
    ]
    failed_checks = [c for c in checks if not c.ok]
    if failed_checks:
        lines += ["", "Failed checks:"]
        for c in failed_checks:
            where = f" ({c.url})" if c.url else ""
            output = c.output.replace("\n", "\n    ")
            lines.append(f"- {c.name}{where}: {output}")
    lines += ["", "The revision is quarantined: the reconciler will not apply it again."]
    return subject, mask_secrets("\n".join(lines))


class Pipeline:
    def __init__(
        self,
        config: Config,
        *,
        git: GitSource,
        swarm: Swarm,
        checker: HealthChecker,
        clock: Clock,
        store: StateStore,
        probes: Callable[[], ProxyProvider] | None = None,
        on_phase: Callable[[Phase | None, str, RevisionInfo | None], None] | None = None,
    ) -> None:
        self.config = config
        self.git = git
        self.swarm = swarm
        self.checker = checker
        self.clock = clock
        self.store = store
        self._probes = probes
        self._on_phase = on_phase
        self.phase: Phase | None = None
        self.stop_requested = asyncio.Event()
        self._revision: RevisionInfo | None = None

    # ---------------------------------------------------------------- helpers

    @property
    def mutating(self) -> bool:
        return self.phase in MUTATING

    def _enter(self, phase: Phase, message: str) -> None:
        if self.stop_requested.is_set() and phase not in MUTATING | {Phase.VERIFY}:
            raise InterruptedPass(f"stop requested before {phase.value}")
        self.phase = phase
        current_phase.set(phase.value)
        current_revision.set(self._revision.sha if self._revision else None)
        logger.info(message)
        if self._on_phase is not None:
            self._on_phase(phase, message, self._revision)

    def _options(self) -> RenderOptions:
        return RenderOptions(
            stack=self.config.stack,
            environment=self.config.environment,
            variables=self.config.render.variables,
            default_timeout=self.config.health.timeout,
            default_interval=self.config.health.interval,
            repo_root=self.git.workdir,
        )

    def _outcome(
        self,
        result: PassResult,
        reason: Reason,
        message: str,
        started: datetime,
        **kw: object,
    ) -> PassOutcome:
        return PassOutcome(
            result=result,
            reason=reason,
            message=mask_secrets(message),
            revision=self._revision,
            started_at=started,
            finished_at=self.clock.now(),
            **kw,  # type: ignore[arg-type]
        )

    async def render_revision(self) -> DesiredState:
        desired = render(self.git.workdir / self.config.git.path, self._options())
        if self.config.docker.validate_with_cli:
            path = self.store.rendered_dir / "candidate.yml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dump(escape_dollars(desired.document)))
            await self.swarm.validate_compose(path)
        return desired

    # ---------------------------------------------------------------- entry point

    async def run(self, status: Status, trigger: str = "interval") -> PassReport:
        started = self.clock.now()
        self._revision = None
        current_stack.set(self.config.stack)
        try:
            journal = self.store.load_journal()
            if journal is not None:
                return await self._resume(status, journal, started)
            return await self._pass(status, trigger, started)
        finally:
            self.phase = None
            current_phase.set(None)
            if self._on_phase is not None:
                self._on_phase(None, "", self._revision)

    async def _pass(self, status: Status, trigger: str, started: datetime) -> PassReport:
        cfg = self.config
        self._enter(Phase.FETCH, f"fetching {cfg.git.branch} from {mask_secrets(cfg.git.url)}")
        try:
            head = await self.git.fetch()
        except GitError as exc:
            logger.error("fetch failed: {}", exc)
            out = self._outcome(PassResult.ERROR, exc.reason, exc.message, started)
            return PassReport(out, trigger, fetch_failed=True)
        self._revision = head
        current_revision.set(head.sha)
        report = PassReport(
            self._outcome(PassResult.NOOP, Reason.IN_SYNC, "", started), trigger, desired=head
        )

        self._enter(Phase.RENDER, f"rendering {cfg.git.path} at {head.short} ({head.subject})")
        try:
            desired = await self.render_revision()
            quarantined = status.is_quarantined(head.sha, desired.desired_hash)
            if quarantined is not None:
                raise QuarantinedError(
                    f"revision {head.short} is quarantined: {quarantined.reason}: "
                    f"{quarantined.message} (it failed as {quarantined.revision.short}); "
                    "push a fix to deploy again"
                )
        except ValidationError as exc:
            logger.error("revision refused: {}", exc.message)
            return self._refused(report, exc, started, exc.problems)
        except QuarantinedError as exc:
            logger.info("{}", exc.message)
            return self._refused(report, exc, started)
        except DockerError as exc:
            return self._error(report, exc, started)
        for warning in desired.warnings:
            logger.warning("{}", warning)

        self._enter(Phase.PLAN, f"planning {len(desired.services)} services against the Swarm")
        try:
            live = await self.swarm.live_state(cfg.stack)
        except DockerError as exc:
            return self._error(report, exc, started)
        the_plan = plan(desired, live, prune=cfg.sync.prune)
        inv = inventory(desired, live, the_plan)
        drift = {c.service: c.diffs for c in the_plan.drifted}
        report = replace(report, inventory=inv, drift=drift)
        if the_plan.empty:
            logger.info("in sync at {}", head.short)
            out = self._outcome(
                PassResult.NOOP,
                Reason.IN_SYNC,
                f"in sync at {head.short}",
                started,
                desired_hash=desired.desired_hash,
                plan=the_plan,
            )
            return replace(report, outcome=out, applied=head, applied_hash=desired.desired_hash)
        summary = describe(the_plan)
        if the_plan.only_drift and not cfg.sync.self_heal:
            logger.warning("drift detected, self-heal off:\n{}", summary)
            out = self._outcome(
                PassResult.NOOP,
                Reason.DRIFT_DETECTED,
                f"drift on {', '.join(drift)} (self-heal off)",
                started,
                plan=the_plan,
                desired_hash=desired.desired_hash,
            )
            return replace(report, outcome=out)
        if status.paused or cfg.sync.dry_run:
            reason = Reason.SUSPENDED if status.paused else Reason.DRY_RUN
            logger.info("{}: not applying:\n{}", reason.value, summary)
            out = self._outcome(
                PassResult.NOOP,
                reason,
                f"{len(the_plan.to_apply)} change(s) pending, not applied "
                f"({'paused' if status.paused else 'dry run'})",
                started,
                plan=the_plan,
                desired_hash=desired.desired_hash,
            )
            return replace(report, outcome=out)

        self._enter(Phase.PREFLIGHT, "checking images, secrets, configs and networks")
        try:
            await self._preflight(desired, live, the_plan)
        except PreflightError as exc:
            logger.error("revision refused: {}", exc.message)
            return self._refused(report, exc, started)
        except DockerError as exc:
            return self._error(report, exc, started)

        return await self._apply_and_verify(status, report, desired, live, the_plan, started)

    # ---------------------------------------------------------------- phases

    async def _preflight(self, desired: DesiredState, live: LiveState, the_plan: Plan) -> None:
        images: set[str] = set()
        for change in the_plan.to_apply:
            spec = desired.service(change.service)
            if spec is None:
                continue
            new_image = any(d.field == "image" for d in change.diffs)
            if change.action == Action.CREATE or new_image or live.service(change.service) is None:
                images.add(spec.image)
        missing = (
            [
                image
                for image, exists in zip(
                    sorted(images),
                    await asyncio.gather(*(self.swarm.image_exists(i) for i in sorted(images))),
                    strict=True,
                )
                if not exists
            ]
            if self.config.docker.preflight_images
            else []
        )
        objects = await self.swarm.missing_objects(
            desired.external_secrets, desired.external_configs, desired.external_networks
        )
        problems = [f"image {i} does not exist in its registry" for i in missing]
        problems += [f"{o} does not exist (declared external)" for o in objects]
        if problems:
            raise PreflightError("; ".join(problems))

    async def _apply_and_verify(
        self,
        status: Status,
        report: PassReport,
        desired: DesiredState,
        live: LiveState,
        the_plan: Plan,
        started: datetime,
    ) -> PassReport:
        head = report.desired
        assert head is not None
        changes = the_plan.to_apply
        previous: dict[str, JSONDict | None] = {}
        for change in changes:
            current = live.service(change.service)
            previous[change.service] = current.spec if current is not None else None
        journal = Journal(
            revision=head,
            desired_hash=desired.desired_hash,
            phase=Phase.APPLY,
            started_at=started,
            changed=tuple(c.service for c in changes),
            previous=previous,
            good_revision=status.last_applied.sha if status.last_applied else None,
            definition_changed=not the_plan.only_drift,
        )
        self._enter(
            Phase.APPLY, "applying: " + ", ".join(f"{c.action.value} {c.service}" for c in changes)
        )
        self.store.save_journal(journal)
        return await self._deploy_verify(report, journal, desired, live, started)

    async def _deploy_verify(
        self,
        report: PassReport,
        journal: Journal,
        desired: DesiredState,
        live: LiveState,
        started: datetime,
    ) -> PassReport:
        cfg = self.config
        keep = {
            s.name: s.revision
            for s in live.services
            if s.revision and s.name not in journal.changed
        }
        doc = stamped_document(desired, journal.revision.sha, keep)
        path = self.store.rendered_path(cfg.stack)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump(escape_dollars(doc)))
        since = self.clock.now()
        t0 = self.clock.monotonic()
        try:
            output = await self.swarm.deploy(
                cfg.stack, path, prune=cfg.sync.prune, time_limit=cfg.timeouts.apply
            )
            logger.info("docker stack deploy: {}", output.replace("\n", "; "))
        except ReconcilerError as exc:
            apply_seconds = self.clock.monotonic() - t0
            logger.error("apply failed: {}", exc.message)
            journal = replace(
                journal,
                failure_reason=Reason.APPLY_FAILED.value,
                failure_message=exc.message,
                failure_detail=exc.detail,
            )
            return await self._fail(report, journal, (), started, apply_seconds=apply_seconds)
        apply_seconds = self.clock.monotonic() - t0

        journal = replace(journal, phase=Phase.VERIFY)
        self.store.save_journal(journal)
        self._enter(Phase.VERIFY, "verifying " + ", ".join(journal.changed))
        t1 = self.clock.monotonic()
        checks = await self._verify(desired, journal, since)
        verify_seconds = self.clock.monotonic() - t1
        failed = [c for c in checks if not c.ok]
        if failed:
            first = failed[0]
            message = f"{first.name}: {first.output}"
            logger.error("verify failed: {}", message)
            journal = replace(
                journal, failure_reason=Reason.HEALTH_CHECK_FAILED.value, failure_message=message
            )
            return await self._fail(
                report,
                journal,
                tuple(checks),
                started,
                apply_seconds=apply_seconds,
                verify_seconds=verify_seconds,
            )
        self._enter(Phase.RECORD, f"deployed {journal.revision.short}: all checks passed")
        inv = await self._inventory(desired, checks)
        self.store.clear_journal()
        drift_only = not journal.definition_changed
        out = self._outcome(
            PassResult.SUCCESS,
            Reason.DRIFT_CORRECTED if drift_only else Reason.RECONCILIATION_SUCCEEDED,
            f"{'corrected drift on' if drift_only else 'deployed'} {', '.join(journal.changed)}",
            started,
            desired_hash=desired.desired_hash,
            changed=journal.changed,
            checks=tuple(checks),
            apply_seconds=apply_seconds,
            verify_seconds=verify_seconds,
        )
        return replace(
            report,
            outcome=out,
            applied=journal.revision,
            applied_hash=desired.desired_hash,
            inventory=inv or report.inventory,
            drift_corrected=bool(report.drift),
        )

    async def _verify(
        self, desired: DesiredState, journal: Journal, since: datetime
    ) -> list[CheckResult]:
        """Wait for Swarm to converge, then run the HTTP checks. A probe container that some
        checks need is started while Swarm converges, so it costs no time of its own."""
        cfg = self.config
        present = [n for n in journal.changed if desired.service(n) is not None]
        gone = [n for n in journal.changed if desired.service(n) is None]
        checks: list[HealthCheck] = []
        for name in present:
            spec = desired.service(name)
            if spec is not None and spec.health is not None:
                checks.append(spec.health)
        checks += [replace(c, network=self._network_name(c.network)) for c in cfg.health.checks]
        networks = sorted({c.network for c in checks if c.network})
        proxies = self._probes() if self._probes and networks else None
        warm: asyncio.Future[list[str | BaseException]] | None = None
        if proxies is not None:
            warm = asyncio.gather(*(proxies.proxy_for(n) for n in networks), return_exceptions=True)
        try:
            swarm_results = await self.swarm.wait_converged(
                cfg.stack,
                present,
                since=since,
                time_limit=cfg.timeouts.verify,
                expected_gone=gone,
            )
            results = [swarm_results[n] for n in (*present, *gone) if n in swarm_results]
            if warm is not None:
                await warm  # errors surface again, per check, from proxy_for
            if any(not r.ok for r in results) or not checks:
                return results
            return results + await self.checker.run(checks, proxies)
        finally:
            if warm is not None and not warm.done():
                warm.cancel()
                # a cancelled gather ends with CancelledError as its exception: retrieve it, so
                # stopping during verify does not log "exception was never retrieved"
                warm.add_done_callback(_retrieve)
            if proxies is not None:
                await proxies.close()

    def _network_name(self, network: str | None) -> str | None:
        if network is None or "_" in network:
            return network
        return f"{self.config.stack}_{network}"

    async def _inventory(
        self, desired: DesiredState | None, checks: list[CheckResult] | tuple[CheckResult, ...]
    ) -> tuple[ServiceStatus, ...] | None:
        try:
            live = await self.swarm.live_state(self.config.stack)
        except DockerError:
            return None
        http = {c.name: c for c in checks if c.kind == "http"}
        healthy = {c.name: c.ok for c in checks}
        the_plan = plan(desired, live, prune=self.config.sync.prune) if desired else None
        return inventory(desired, live, the_plan, http, healthy)

    async def _fail(
        self,
        report: PassReport,
        journal: Journal,
        checks: tuple[CheckResult, ...],
        started: datetime,
        *,
        apply_seconds: float | None = None,
        verify_seconds: float | None = None,
    ) -> PassReport:
        cfg = self.config
        rev = journal.revision
        rollback_ok = True
        stalled_reason: Reason | None = None
        stalled_message = ""
        if not journal.rollback_done:
            journal = replace(journal, phase=Phase.ROLLBACK)
            self.store.save_journal(journal)
            self._enter(Phase.ROLLBACK, "rolling back " + ", ".join(journal.changed))
            try:
                await self.swarm.restore(
                    cfg.stack, journal.previous, time_limit=cfg.timeouts.rollback
                )
                logger.info("rollback converged: {}", ", ".join(journal.changed))
            except DockerError as exc:
                # the engine is unreachable: keep the journal, the next pass rolls back again
                logger.error("rollback could not run, retried by the next pass: {}", exc.message)
                out = self._outcome(
                    PassResult.ERROR,
                    exc.reason,
                    f"{journal.failure_message}; rollback pending: {exc.message}",
                    started,
                    changed=journal.changed,
                    checks=checks,
                    retry_after=exc.retry_after,
                )
                return replace(report, outcome=replace(out, revision=rev), quarantine=True)
            except RollbackError as exc:
                rollback_ok = False
                stalled_reason, stalled_message = Reason.ROLLBACK_FAILED, exc.message
                logger.error("rollback failed: {}", exc.message)
            journal = replace(journal, rollback_done=True, phase=Phase.REVERT)
            self.store.save_journal(journal)

        revert_commit = journal.revert_commit
        reverted: tuple[str, ...] = ()
        keep_journal = False
        if journal.definition_changed and cfg.git.push_reverts:
            self._enter(Phase.REVERT, f"reverting {rev.short} in git")
            try:
                if revert_commit is None:
                    revert_commit = await self.git.find_revert(rev.sha)
                    if revert_commit:
                        logger.info("revert of {} already pushed: {}", rev.short, revert_commit)
                if revert_commit is None:
                    commits = await self.git.offending_commits(journal.good_revision, rev.sha)
                    if not commits:
                        logger.warning("no commit under {} to revert", cfg.git.path)
                    else:
                        subject, body = revert_message(
                            cfg,
                            rev,
                            commits,
                            journal.failure_reason,
                            journal.failure_message,
                            checks,
                        )
                        revert_commit = await self.git.revert(commits, rev, subject, body)
                        reverted = tuple(c.sha for c in commits)
                        if revert_commit:
                            logger.warning(
                                "pushed revert {} of {}",
                                revert_commit,
                                ", ".join(c.short for c in commits),
                            )
                        journal = replace(journal, revert_commit=revert_commit)
                        self.store.save_journal(journal)
            except RevertError as exc:
                stalled_reason = stalled_reason or Reason.REVERT_FAILED
                stalled_message = stalled_message or exc.message
                logger.error("revert failed: {}", exc.message)
            except GitError as exc:
                keep_journal = True  # retried by the next pass
                logger.error("revert not pushed yet, will retry: {}", exc.message)

        self._enter(Phase.RECORD, f"recording the failure of {rev.short}")
        if not keep_journal:
            self.store.clear_journal()
        desired = None
        try:
            desired = await self.render_revision()
        except (ReconcilerError, OSError):
            desired = None
        inv = await self._inventory(desired, checks)
        result = PassResult.ROLLED_BACK if rollback_ok else PassResult.FAILED
        reason = Reason(journal.failure_reason) if journal.failure_reason else Reason.INTERNAL_ERROR
        message = journal.failure_message
        if stalled_reason is not None:
            message += f"; {stalled_reason.value}: {stalled_message}"
        out = self._outcome(
            result,
            reason,
            message,
            started,
            desired_hash=journal.desired_hash,
            changed=journal.changed,
            checks=checks,
            rolled_back=journal.changed if rollback_ok else (),
            # also a revert found in the remote: pushed by a run that died before recording it
            revert_commit=revert_commit,
            detail=journal.failure_detail,
            stalled=stalled_reason is not None,
            stalled_reason=stalled_reason,
            apply_seconds=apply_seconds,
            verify_seconds=verify_seconds,
        )
        out = replace(out, revision=rev)
        return replace(
            report,
            outcome=out,
            desired=report.desired or rev,
            quarantine=True,
            reverted=reverted,
            inventory=inv or report.inventory,
            problems=(stalled_message,) if stalled_message else (),
        )

    # ---------------------------------------------------------------- refusals and errors

    def _refused(
        self,
        report: PassReport,
        exc: ReconcilerError,
        started: datetime,
        problems: tuple[str, ...] = (),
    ) -> PassReport:
        out = self._outcome(
            PassResult.REFUSED, exc.reason, exc.message, started, detail=exc.detail, stalled=True
        )
        return replace(report, outcome=out, problems=problems)

    def _error(self, report: PassReport, exc: ReconcilerError, started: datetime) -> PassReport:
        logger.error("{}", exc.message)
        out = self._outcome(
            PassResult.ERROR, exc.reason, exc.message, started, retry_after=exc.retry_after
        )
        return replace(report, outcome=out)

    # ---------------------------------------------------------------- crash recovery

    async def _resume(self, status: Status, journal: Journal, started: datetime) -> PassReport:
        self._revision = journal.revision
        current_revision.set(journal.revision.sha)
        logger.bind(phase=journal.phase.value).warning(
            "resuming the pass interrupted in phase {}", journal.phase.value
        )
        report = PassReport(
            self._outcome(PassResult.NOOP, Reason.IN_SYNC, "", started),
            "recovery",
            desired=journal.revision,
        )
        if journal.phase in (Phase.ROLLBACK, Phase.REVERT):
            return await self._fail(report, journal, (), started)
        try:
            self._enter(Phase.FETCH, f"checking out {journal.revision.short} again")
            await self.git.checkout(journal.revision.sha)
            self._enter(Phase.RENDER, "rendering it again")
            desired = await self.render_revision()
            live = await self.swarm.live_state(self.config.stack)
        except ReconcilerError as exc:
            if isinstance(exc, DockerError | GitError):
                return self._error(report, exc, started)
            journal = replace(journal, failure_reason=exc.reason.value, failure_message=exc.message)
            return await self._fail(report, journal, (), started)
        self._enter(Phase.APPLY, "finishing the interrupted apply")
        journal = replace(journal, phase=Phase.APPLY)
        self.store.save_journal(journal)
        return await self._deploy_verify(report, journal, desired, live, started)
