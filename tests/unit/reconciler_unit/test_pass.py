"""Every branch of a pass, in seconds: the agent as the daemon builds it, with fakes at its
ports (``reconciler_support.fakes``, kept honest by ``tests/contract/``). Each row starts from
the stack deployed at 1, changes the world, runs one pass and checks what a person on call would
see: the result and reason, the exit code ``reconciler sync`` gives, what runs, the reverts in
git, the journal, the Stalled condition and the alerts sent.

The real-Swarm end-to-end tests (``tests/e2e/reconciler_e2e``) prove the adapters."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest
from reconciler_support.fakes import Killed, kill
from reconciler_support.world import (
    IMAGES_FILE,
    STACK,
    STACK_FILE,
    STACK_YML,
    World,
    error_rate,
    image,
)

from reconciler.decisions import ExitCode, exit_code
from reconciler.errors import InterruptedPass, Reason
from reconciler.models import PassResult, Phase
from reconciler.status import ConditionType

Arrange = Callable[[World], Awaitable[None] | None]
ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Row:
    name: str
    arrange: Arrange
    result: PassResult
    reason: Reason
    exit: ExitCode
    live: str = "1"  # the web tag running after the pass
    reverts: int = 0  # revert commits in the remote after the pass
    journal: bool = False  # a journal left for the next pass to finish
    stalled: Reason | None = None
    events: tuple[str, ...] = ()
    message: str = ""  # a part of the pass's message
    api: tuple[str, ...] = ("1", "1", "1")  # the tag each api task runs after the pass


@pytest.fixture
async def world(tmp_path: Path) -> World:
    world = World(tmp_path)
    first = await world.sync()
    assert first.result == PassResult.SUCCESS, first.message
    world.notified.events.clear()
    return world


# ------------------------------------------------------------------ the rows' arrangements


def _nothing(world: World) -> None:
    return None


def _good_release(world: World) -> None:
    world.release(web="2")


def _invalid_yaml(world: World) -> None:
    world.remote.write({STACK_FILE: STACK_YML + "  broken: [\n"}, "Break the stack file")


def _unknown_image(world: World) -> None:
    world.release(web="9")


def _missing_secret(world: World) -> None:
    stack = STACK_YML + "secrets:\n  db_password: {external: true, name: shop_db_password}\n"
    stack = stack.replace("  web:\n", "  web:\n    secrets: [db_password]\n", 1)
    world.remote.write({STACK_FILE: stack}, "Give web the database password")


def _unplaceable(world: World) -> None:
    placement = "      placement:\n        constraints: [node.labels.driftless.edge == true]\n"
    stack = STACK_YML.replace("      replicas: 3\n", "      replicas: 3\n" + placement, 1)
    world.remote.write({STACK_FILE: stack}, "Run api on the edge nodes")


def _remote_down(world: World) -> None:
    world.release(web="2")
    world.remote.unreachable = True


def _remote_failing(world: World) -> None:
    world.release(web="2")
    world.remote.failing = (
        "fatal: unable to access 'https://git.example.org/shop.git/': The requested URL "
        "returned error: 500"
    )


def _remote_refuses_the_key(world: World) -> None:
    world.release(web="2")
    world.remote.failing = (
        "git@git.example.org: Permission denied (publickey).\n"
        "fatal: Could not read from remote repository."
    )


REGISTRY_DOWN = (
    'Get "http://registry.test:5000/v2/": dial tcp 10.0.0.9:5000: connect: connection refused'
)


def _registry_down(world: World) -> None:
    world.release(web="2")
    world.swarm.registry_error = REGISTRY_DOWN


def _registry_failing(world: World) -> None:
    world.release(web="2")
    world.swarm.registry_error = "received unexpected HTTP status: 500 Internal Server Error"


def _registry_lost_in_deploy(world: World) -> None:
    """Up at pre-flight, gone when ``docker stack deploy`` resolves the images."""
    world.release(web="2")
    world.swarm.on["deploy"] = lambda: setattr(
        world.swarm,
        "registry_error",
        'Get "https://registry.test:5000/v2/shop/web/manifests/2": net/http: request canceled '
        "while waiting for connection (Client.Timeout exceeded while awaiting headers)",
    )


def _engine_down(world: World) -> None:
    world.release(web="2")
    world.swarm.down = True


async def _paused(world: World) -> None:
    async with world.agent() as agent:
        await agent.pause("release freeze")
    world.release(web="2")


def _dry_run(world: World) -> None:
    world.configure(sync={"dry_run": True})
    world.release(web="2")


def _drift(world: World) -> None:
    world.swarm.stacks[STACK]["api"].definition["deploy"]["replicas"] = 5


def _drift_self_heal_off(world: World) -> None:
    _drift(world)
    world.configure(sync={"self_heal": False})


def _deploy_refused(world: World) -> None:
    world.release(web="2")
    world.swarm.deploy_error = "services.web.deploy.replicas must be an integer"


def _crashing(world: World) -> None:
    world.swarm.crashing.add(image("web", "3"))
    world.release(web="3")


def _never_ready(world: World) -> None:
    world.swarm.never_ready.add(image("web", "3"))
    world.release(web="3")


def _http_500(world: World) -> None:
    world.checker.by_image[image("web", "3")] = (500, '{"error": "database is down"}')
    world.release(web="3")


def _wrong_version(world: World) -> None:
    world.checker.by_image[image("web", "3")] = (200, '{"version": "1"}')
    world.release(web="3")


def _rollback_stuck(world: World) -> None:
    _crashing(world)
    world.swarm.rollback_stuck = True


def _engine_lost_in_rollback(world: World) -> None:
    _crashing(world)
    world.swarm.on["restore"] = lambda: setattr(world.swarm, "down", True)


def _engine_lost_in_verify(world: World) -> None:
    world.release(web="2")
    world.swarm.on["wait_converged"] = lambda: setattr(world.swarm, "down", True)


def _hotfix_during_verify(world: World) -> None:
    _crashing(world)
    hotfix = f"web: {image('web', '4')}\napi: {image('api', '1')}\n"
    world.swarm.on["wait_converged"] = lambda: world.remote.write({IMAGES_FILE: hotfix}, "Hotfix")


def _remote_lost_in_revert(world: World) -> None:
    _crashing(world)
    world.git.on["find_revert"] = lambda: setattr(world.remote, "unreachable", True)


def _api_wrong_version(world: World) -> None:
    world.checker.by_image[image("api", "3")] = (200, '{"version": "1"}')
    world.release(api="3")


def _api_error_rate(world: World) -> None:
    world.metrics.values[error_rate("3")] = 0.4
    world.release(api="3")


def _api_crash_later(world: World) -> None:
    world.swarm.crash_after[image("api", "3")] = 20
    world.release(api="3")


def _api_canary_never_starts(world: World) -> None:
    world.swarm.never_ready.add(image("api", "3"))
    world.release(api="3")


def _engine_cannot_start(world: World) -> None:
    world.swarm.unstartable.add(image("web", "2"))
    world.release(web="2")


def _engine_cannot_start_canary(world: World) -> None:
    world.swarm.unstartable.add(image("api", "2"))
    world.release(api="2")


def _prometheus_down(world: World) -> None:
    world.metrics.down = True
    world.release(api="3")


def _query_refused(world: World) -> None:
    world.metrics.refused[error_rate("3")] = "1:8: parse error: unexpected identifier"
    world.release(api="3")


def _api_good(world: World) -> None:
    world.release(api="2")


def _docker_race(world: World) -> None:
    world.release(web="2")
    world.swarm.deploy_races = 1


def _drift_correction_fails(world: World) -> None:
    _drift(world)
    world.swarm.deploy_error = (
        'invalid mount config for type "bind": bind source path does not exist: /srv/data'
    )


CANARY_ROWS = [
    Row(
        "a good api release passes its canary step",
        _api_good,
        PassResult.SUCCESS,
        Reason.RECONCILIATION_SUCCEEDED,
        ExitCode.OK,
        events=("deploy_succeeded",),
        api=("2", "2", "2"),
    ),
    Row(
        "the api canary serves the wrong version",
        _api_wrong_version,
        PassResult.ROLLED_BACK,
        Reason.HEALTH_CHECK_FAILED,
        ExitCode.ROLLED_BACK,
        reverts=1,
        events=("deploy_failed", "revert_pushed"),
        message="version 3 is not served",
    ),
    Row(
        "the api canary's error rate is over its condition",
        _api_error_rate,
        PassResult.ROLLED_BACK,
        Reason.ANALYSIS_FAILED,
        ExitCode.ROLLED_BACK,
        reverts=1,
        events=("deploy_failed", "revert_pushed"),
        message="api canary: error-rate: 0.4 (result < 0.05) 0/1 successful, 1 failed",
    ),
    Row(
        "the api canary crashes 20 s after it started",
        _api_crash_later,
        PassResult.ROLLED_BACK,
        Reason.HEALTH_CHECK_FAILED,
        ExitCode.ROLLED_BACK,
        reverts=1,
        events=("deploy_failed", "revert_pushed"),
        message="api canary: a new task exited",
    ),
    Row(
        "the api canary never starts",
        _api_canary_never_starts,
        PassResult.ROLLED_BACK,
        Reason.HEALTH_CHECK_FAILED,
        ExitCode.ROLLED_BACK,
        reverts=1,
        events=("deploy_failed", "revert_pushed"),
        message="the canary did not start within 600s",
    ),
    Row(
        "an analysis query Prometheus refuses",
        _query_refused,
        PassResult.REFUSED,
        Reason.PREFLIGHT_FAILED,
        ExitCode.REFUSED,
        stalled=Reason.PREFLIGHT_FAILED,
        events=("revision_refused",),
        message="api: error-rate: Prometheus refuses the query: 1:8: parse error",
    ),
    Row(
        "the engine cannot start web's tasks (an overlay address held): rolled back, not blamed",
        _engine_cannot_start,
        PassResult.ERROR,
        Reason.DOCKER_UNAVAILABLE,
        ExitCode.TRANSIENT,
        message="the engine could not start task",
    ),
    Row(
        "the engine cannot start the api canary: rolled back, not blamed",
        _engine_cannot_start_canary,
        PassResult.ERROR,
        Reason.DOCKER_UNAVAILABLE,
        ExitCode.TRANSIENT,
        message="api canary: the engine could not start a canary task: starting container failed",
    ),
    Row(
        "Prometheus is down during the api canary",
        _prometheus_down,
        PassResult.ERROR,
        Reason.ANALYSIS_INCONCLUSIVE,
        ExitCode.TRANSIENT,
        message="error-rate: Prometheus at http://prometheus:9090 unreachable",
    ),
]

ROWS = [
    Row("in sync", _nothing, PassResult.NOOP, Reason.IN_SYNC, ExitCode.OK),
    Row(
        "a good release",
        _good_release,
        PassResult.SUCCESS,
        Reason.RECONCILIATION_SUCCEEDED,
        ExitCode.OK,
        live="2",
        events=("deploy_succeeded",),
    ),
    Row(
        "invalid desired state",
        _invalid_yaml,
        PassResult.REFUSED,
        Reason.VALIDATION_FAILED,
        ExitCode.REFUSED,
        stalled=Reason.VALIDATION_FAILED,
        events=("revision_refused",),
        message="invalid YAML",
    ),
    Row(
        "an image missing from its registry",
        _unknown_image,
        PassResult.REFUSED,
        Reason.PREFLIGHT_FAILED,
        ExitCode.REFUSED,
        stalled=Reason.PREFLIGHT_FAILED,
        events=("revision_refused",),
        message="web:9 does not exist in its registry",
    ),
    Row(
        "a missing external secret",
        _missing_secret,
        PassResult.REFUSED,
        Reason.PREFLIGHT_FAILED,
        ExitCode.REFUSED,
        stalled=Reason.PREFLIGHT_FAILED,
        events=("revision_refused",),
        message="secret shop_db_password does not exist",
    ),
    Row(
        "a placement no node meets",
        _unplaceable,
        PassResult.REFUSED,
        Reason.PREFLIGHT_FAILED,
        ExitCode.REFUSED,
        stalled=Reason.PREFLIGHT_FAILED,
        events=("revision_refused",),
        message="api: no node meets the placement constraint `node.labels.driftless.edge == true`",
    ),
    Row(
        "the git remote unreachable",
        _remote_down,
        PassResult.ERROR,
        Reason.GIT_REMOTE_UNAVAILABLE,
        ExitCode.TRANSIENT,
        message="git remote unreachable: fatal: unable to access 'fake://remote/': Could not",
    ),
    Row(
        "the git remote answers 500 to the fetch",
        _remote_failing,
        PassResult.ERROR,
        Reason.GIT_REMOTE_UNAVAILABLE,
        ExitCode.TRANSIENT,
        message="git remote unreachable: fatal: unable to access",
    ),
    Row(
        "the git remote refuses the deploy key",
        _remote_refuses_the_key,
        PassResult.ERROR,
        Reason.ARTIFACT_FAILED,
        ExitCode.TRANSIENT,
        message="git remote refused: git@git.example.org: Permission denied (publickey).",
    ),
    Row(
        "the registry down at pre-flight (not the revision's fault: nothing changes)",
        _registry_down,
        PassResult.ERROR,
        Reason.REGISTRY_UNAVAILABLE,
        ExitCode.TRANSIENT,
        message="checking image registry.test:5000/shop/web:2: registry registry.test:5000 "
        "unreachable: Get",
    ),
    Row(
        "the registry answers 500 at pre-flight",
        _registry_failing,
        PassResult.ERROR,
        Reason.REGISTRY_UNAVAILABLE,
        ExitCode.TRANSIENT,
        message="registry registry.test:5000 unreachable: received unexpected HTTP status: 500",
    ),
    Row(
        "the registry lost while the deploy resolves images (not reverted, applied again)",
        _registry_lost_in_deploy,
        PassResult.ERROR,
        Reason.REGISTRY_UNAVAILABLE,
        ExitCode.TRANSIENT,
        journal=True,
        message="docker stack deploy failed 3 times: registry registry.test:5000 unreachable",
    ),
    Row(
        "the Docker engine unreachable",
        _engine_down,
        PassResult.ERROR,
        Reason.DOCKER_UNAVAILABLE,
        ExitCode.TRANSIENT,
    ),
    Row("paused", _paused, PassResult.NOOP, Reason.SUSPENDED, ExitCode.OK, message="paused"),
    Row("a dry run", _dry_run, PassResult.NOOP, Reason.DRY_RUN, ExitCode.OK),
    Row(
        "drift, corrected",
        _drift,
        PassResult.SUCCESS,
        Reason.DRIFT_CORRECTED,
        ExitCode.OK,
        events=("drift_detected",),
    ),
    Row(
        "drift, self-heal off",
        _drift_self_heal_off,
        PassResult.NOOP,
        Reason.DRIFT_DETECTED,
        ExitCode.OK,
        events=("drift_detected",),
    ),
    Row(
        "docker stack deploy refuses",
        _deploy_refused,
        PassResult.ROLLED_BACK,
        Reason.APPLY_FAILED,
        ExitCode.ROLLED_BACK,
        reverts=1,
        events=("deploy_failed", "revert_pushed"),
        message="replicas must be an integer",
    ),
    Row(
        "a network Docker is still removing (a race, not the revision's fault)",
        _docker_race,
        PassResult.ERROR,
        Reason.DOCKER_UNAVAILABLE,
        ExitCode.TRANSIENT,
        journal=True,
        message="network shop_back not found",
    ),
    Row(
        "new tasks crash",
        _crashing,
        PassResult.ROLLED_BACK,
        Reason.HEALTH_CHECK_FAILED,
        ExitCode.ROLLED_BACK,
        reverts=1,
        events=("deploy_failed", "revert_pushed"),
        message="tasks of the new spec failed",
    ),
    Row(
        "new tasks never get ready",
        _never_ready,
        PassResult.ROLLED_BACK,
        Reason.HEALTH_CHECK_FAILED,
        ExitCode.ROLLED_BACK,
        reverts=1,
        events=("deploy_failed", "revert_pushed"),
        message="not converged after 600s",
    ),
    Row(
        "the HTTP check fails",
        _http_500,
        PassResult.ROLLED_BACK,
        Reason.HEALTH_CHECK_FAILED,
        ExitCode.ROLLED_BACK,
        reverts=1,
        events=("deploy_failed", "revert_pushed"),
        message="HTTP 500",
    ),
    Row(
        "the wrong version is served",
        _wrong_version,
        PassResult.ROLLED_BACK,
        Reason.HEALTH_CHECK_FAILED,
        ExitCode.ROLLED_BACK,
        reverts=1,
        events=("deploy_failed", "revert_pushed"),
        message="version 3 is not served",
    ),
    Row(
        "the rollback does not converge",
        _rollback_stuck,
        PassResult.FAILED,
        Reason.HEALTH_CHECK_FAILED,
        ExitCode.STALLED,
        reverts=1,
        stalled=Reason.ROLLBACK_FAILED,
        events=("deploy_failed", "revert_pushed", "stalled"),
        message="RollbackFailed: rollback did not converge",
    ),
    Row(
        "the engine is lost during the rollback",
        _engine_lost_in_rollback,
        PassResult.ERROR,
        Reason.DOCKER_UNAVAILABLE,
        ExitCode.TRANSIENT,
        live="3",
        journal=True,
        message="rollback pending",
    ),
    Row(
        "the engine is lost during the verify",
        _engine_lost_in_verify,
        PassResult.ERROR,
        Reason.DOCKER_UNAVAILABLE,
        ExitCode.TRANSIENT,
        live="2",
        journal=True,
    ),
    Row(
        "the revert conflicts with a hotfix",
        _hotfix_during_verify,
        PassResult.ROLLED_BACK,
        Reason.HEALTH_CHECK_FAILED,
        ExitCode.STALLED,
        stalled=Reason.REVERT_FAILED,
        events=("deploy_failed", "stalled"),
        message="RevertFailed: cannot revert",
    ),
    Row(
        "the remote is lost during the revert",
        _remote_lost_in_revert,
        PassResult.ROLLED_BACK,
        Reason.HEALTH_CHECK_FAILED,
        ExitCode.ROLLED_BACK,
        journal=True,
        events=("deploy_failed",),
    ),
    Row(
        "a drift correction fails",
        _drift_correction_fails,
        PassResult.ROLLED_BACK,
        Reason.APPLY_FAILED,
        ExitCode.ROLLED_BACK,
        events=("drift_detected", "deploy_failed"),
    ),
]


@pytest.mark.parametrize("row", ROWS + CANARY_ROWS, ids=[r.name for r in ROWS + CANARY_ROWS])
async def test_one_pass(world: World, row: Row) -> None:
    arranged = row.arrange(world)
    if arranged is not None:
        await arranged
    out = await world.sync()
    assert (out.result, out.reason) == (row.result, row.reason), out.message
    assert exit_code(out) == row.exit
    assert row.message in out.message
    assert world.live("web") == row.live
    assert world.tasks("api") == list(row.api)
    assert len(world.reverts()) == row.reverts
    assert world.journal_left() == row.journal
    stalled = world.status().condition(ConditionType.STALLED)
    if row.stalled is not None:
        assert stalled is not None
        assert stalled.status is True
        assert stalled.reason == row.stalled
    else:
        assert not world.status().is_true(ConditionType.STALLED)
    assert tuple(world.events()) == row.events


# ------------------------------------------------------------------ beyond one pass


async def test_a_failed_revision_is_quarantined_and_its_revert_is_the_next_revision(
    world: World,
) -> None:
    _crashing(world)
    bad = world.remote.head()
    await world.sync()
    [revert] = world.reverts()
    assert world.remote.head() == revert
    message = world.remote.message()
    assert message.startswith('Revert "Bump web to 3 and api to 1"')
    assert "3 tasks of the new spec failed" in message
    assert f"Driftless-Revert-Of: {bad}" in message
    # the next pass: the revert renders to what runs, so a quiet noop, and Ready again
    after = await world.sync()
    assert (after.result, after.reason) == (PassResult.NOOP, Reason.IN_SYNC)
    assert world.events()[-1] == "recovered"
    # the same bad change pushed again is refused without touching anything
    world.release(web="3", subject="Try 3 again")
    again = await world.sync()
    assert (again.result, again.reason) == (PassResult.REFUSED, Reason.QUARANTINED)
    assert world.live() == "1"
    assert len(world.reverts()) == 1


async def test_a_revert_the_remote_lost_is_pushed_by_the_next_pass_once(world: World) -> None:
    _remote_lost_in_revert(world)
    await world.sync()
    world.remote.unreachable = False
    out = await world.sync()
    assert out.trigger == "recovery"
    assert out.result == PassResult.ROLLED_BACK
    assert len(world.reverts()) == 1
    assert not world.journal_left()
    assert (await world.sync()).reason == Reason.IN_SYNC


async def test_a_verify_the_engine_lost_is_done_again_by_the_next_pass(world: World) -> None:
    """An engine restart during the verify is not the revision's fault: no rollback, no
    revert; the next pass verifies the same revision again."""
    _engine_lost_in_verify(world)
    await world.sync()
    world.swarm.down = False
    out = await world.sync()
    assert (out.result, out.trigger) == (PassResult.SUCCESS, "recovery")
    assert world.live() == "2"
    assert not world.reverts()
    assert not world.journal_left()


async def test_a_verify_that_times_out_after_the_engine_came_back_is_not_blamed(
    world: World,
) -> None:
    """Swarm recovering from an engine restart can keep new tasks pending past the verify's
    timeout (a host port still held): rolled back, not reverted, and tried again; a timeout
    with the engine there all along is the revision's."""
    world.swarm.never_ready.add(image("web", "2"))
    _engine_lost_in_verify(world)
    await world.sync()
    world.swarm.down = False
    out = await world.sync()
    assert out.result == PassResult.ERROR, out.message
    assert out.reason == Reason.DOCKER_UNAVAILABLE
    assert world.live() == "1"
    assert not world.reverts()
    assert not world.status().quarantine
    again = await world.sync()  # the engine stayed: now the timeout is the revision's
    assert again.result == PassResult.ROLLED_BACK, again.message
    assert len(world.reverts()) == 1


@pytest.mark.parametrize("arrange", [_docker_race, _registry_lost_in_deploy])
async def test_a_docker_race_at_the_apply_is_applied_again_not_blamed(
    world: World, arrange: Arrange
) -> None:
    arrange(world)
    await world.sync()
    world.swarm.on.clear()
    world.swarm.registry_error = ""
    out = await world.sync()
    assert (out.result, out.trigger) == (PassResult.SUCCESS, "recovery")
    assert world.live() == "2"
    assert not world.reverts()
    assert world.status().quarantine == ()


async def test_the_raw_error_is_kept_masked_in_the_status_and_shown_on_the_page(
    world: World,
) -> None:
    """The person on call sees which component failed (the reason) and its own words (the
    detail), with no secret in them; the detail goes once Ready again."""
    from reconciler.web.page import render_content
    from reconciler.web.settings import Site

    world.release(web="2")
    world.remote.failing = (
        "fatal: unable to access 'https://bot:s3cr3t-token@git.example.org/shop.git/': The "
        "requested URL returned error: 502"
    )
    out = await world.sync()
    assert (out.result, out.reason) == (PassResult.ERROR, Reason.GIT_REMOTE_UNAVAILABLE)
    status = world.status()  # as status.json holds it
    ready = status.condition(ConditionType.READY)
    assert ready is not None
    assert ready.detail == (
        "fatal: unable to access 'https://***@git.example.org/shop.git/': The requested URL "
        "returned error: 502"
    )
    assert "s3cr3t-token" not in json.dumps(status.to_dict())
    page = render_content(
        status.to_dict(), Site.from_config(world.config), world.clock.now(), can_act=False
    )
    assert "<summary>raw error</summary>" in page
    assert "The requested URL returned error: 502" in page
    world.remote.failing = ""
    assert (await world.sync()).result == PassResult.SUCCESS
    ready = world.status().condition(ConditionType.READY)
    assert ready is not None
    assert (ready.status, ready.detail) == (True, "")


async def test_a_rollback_the_engine_lost_is_finished_by_the_next_pass(world: World) -> None:
    _engine_lost_in_rollback(world)
    await world.sync()
    world.swarm.down = False
    out = await world.sync()
    assert (out.result, out.reason) == (PassResult.ROLLED_BACK, Reason.HEALTH_CHECK_FAILED)
    assert world.live() == "1"
    assert len(world.reverts()) == 1
    assert not world.journal_left()


# ------------------------------------------------------------------ interrupted


@dataclass(frozen=True)
class Kill:
    """The agent killed in ``call`` while deploying ``tag``; what the next start makes of it."""

    phase: Phase
    call: str
    tag: str
    result: PassResult
    live: str
    reverts: int
    on_git: bool = False
    extra: dict[str, object] = field(default_factory=dict)


KILLS = [
    Kill(Phase.APPLY, "deploy", "2", PassResult.SUCCESS, "2", 0),
    Kill(Phase.VERIFY, "wait_converged", "2", PassResult.SUCCESS, "2", 0),
    Kill(Phase.VERIFY, "wait_converged", "3", PassResult.ROLLED_BACK, "1", 1),
    Kill(Phase.ROLLBACK, "restore", "3", PassResult.ROLLED_BACK, "1", 1),
    Kill(Phase.REVERT, "revert", "3", PassResult.ROLLED_BACK, "1", 1, on_git=True),
    Kill(Phase.REVERT, "after push", "3", PassResult.ROLLED_BACK, "1", 1, on_git=True),
]


@pytest.mark.parametrize("k", KILLS, ids=[f"{k.call}-{k.tag}" for k in KILLS])
async def test_a_killed_pass_is_finished_by_the_next_start(world: World, k: Kill) -> None:
    world.swarm.crashing.add(image("web", "3"))
    world.release(web=k.tag)
    (world.git.on if k.on_git else world.swarm.on)[k.call] = kill(k.call)
    with pytest.raises(Killed):
        await world.sync()
    journal = json.loads((world.config.state_dir / "journal.json").read_text())
    assert journal["phase"] == k.phase.value
    out = await world.sync()
    assert out.trigger == "recovery"
    assert out.result == k.result, out.message
    assert world.live() == k.live
    assert len(world.reverts()) == k.reverts  # never twice
    assert not world.journal_left()


async def test_a_service_removed_by_hand_during_the_verify_is_deployed_again_not_blamed(
    world: World,
) -> None:
    world.release(web="2")
    world.swarm.on["wait_converged"] = lambda: world.swarm.stacks[STACK].pop("web")
    out = await world.sync()
    assert out.result == PassResult.ERROR, out.message
    assert out.reason == Reason.DRIFT_DETECTED
    assert "removed during the rollout" in out.message
    assert world.journal_left()  # the next pass finishes it
    assert not world.reverts()
    again = await world.sync()
    assert again.result == PassResult.SUCCESS, again.message
    assert world.live() == "2"
    assert not world.reverts()
    assert not world.status().quarantine


DAMAGES = {
    "garbage": lambda data: b"\x00\xff not json",
    "truncated": lambda data: data[: len(data) // 2],
}


@pytest.mark.parametrize("copy_lost", [False, True], ids=["copy-kept", "copy-lost"])
@pytest.mark.parametrize("status_lost", [False, True], ids=["status-kept", "status-lost"])
@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize(("tag", "result", "live", "reverts"), [
    ("2", PassResult.SUCCESS, "2", 0),
    ("3", PassResult.ROLLED_BACK, "1", 1),
])  # fmt: skip
async def test_a_damaged_journal_is_rebuilt_from_the_live_stack(
    world: World,
    tag: str,
    result: PassResult,
    live: str,
    reverts: int,
    damage: str,
    status_lost: bool,
    copy_lost: bool,
) -> None:
    """Killed while verifying, and then the journal (and maybe the status) damaged: the next
    start reads the journal's copy, or with that damaged too rebuilds what was in flight from
    the services' revision labels and Swarm's previous specs; it verifies again, and rolls back
    and reverts a bad release once."""
    world.swarm.crashing.add(image("web", "3"))
    world.release(web=tag)
    world.swarm.on["wait_converged"] = kill("wait_converged")
    with pytest.raises(Killed):
        await world.sync()
    state = world.config.state_dir
    journal = state / "journal.json"
    journal.write_bytes(DAMAGES[damage](journal.read_bytes()))
    copy = state / "journal.json.copy"
    if copy_lost:
        copy.write_bytes(DAMAGES[damage](copy.read_bytes()))
    if status_lost:
        (state / "status.json").write_bytes(b"{")
    out = await world.sync()
    assert out.result == result, out.message
    assert world.live() == live
    assert len(world.reverts()) == reverts
    assert not world.journal_left()
    assert not copy.exists()
    assert (state / "journal.json.unreadable").exists() == copy_lost
    again = await world.sync()  # and the agent goes on from there
    assert again.result in (PassResult.NOOP, PassResult.SUCCESS), again.message
    assert len(world.reverts()) == reverts


@pytest.mark.parametrize("before", [Phase.FETCH, Phase.RENDER, Phase.PLAN, Phase.PREFLIGHT])
async def test_a_stop_before_a_read_only_phase_ends_the_pass_changing_nothing(
    world: World, before: Phase
) -> None:
    world.release(web="2")
    previous = {
        Phase.RENDER: (world.git.on, "fetch"),
        Phase.PLAN: (world.swarm.on, "validate_compose"),
        Phase.PREFLIGHT: (world.swarm.on, "live_state"),
    }
    async with world.agent() as agent:
        stop = agent.context.stop_requested.set
        if before is Phase.FETCH:
            stop()
        else:
            hooks, call = previous[before]
            hooks[call] = stop
        with pytest.raises(InterruptedPass, match=f"before {before.value}"):
            await agent.run_pass("manual")
    assert world.live() == "1"
    assert not world.journal_left()
    reconciling = world.status().condition(ConditionType.RECONCILING)
    assert reconciling is not None
    assert reconciling.reason == Reason.INTERRUPTED


async def test_a_stop_during_the_apply_lets_the_pass_finish(world: World) -> None:
    world.release(web="2")
    async with world.agent() as agent:
        world.swarm.on["deploy"] = agent.context.stop_requested.set
        out = await agent.run_pass("manual")
    assert out.result == PassResult.SUCCESS
    assert world.live() == "2"


# ------------------------------------------------------------------ progressive rollouts


@pytest.mark.parametrize(
    "arrange", [_api_wrong_version, _api_error_rate, _api_crash_later, _prometheus_down]
)
async def test_a_bad_canary_is_all_of_the_release_that_ever_runs(
    world: World, arrange: Arrange
) -> None:
    """Swarm's update is held after the first new task: the other two never run the bad
    release, whatever fails the canary, and the rollback puts the old one back on all three."""
    arrange(world)
    started = world.clock.monotonic()
    await world.sync()
    assert world.swarm.peak[image("api", "3")] == 1
    assert world.tasks("api") == ["1", "1", "1"]
    # a failure is found at the first measurement after it shows, not at a timeout; an
    # inconclusive canary is known only at the window's end (30 s)
    took = world.clock.monotonic() - started
    limit = {_api_crash_later: 25.0, _prometheus_down: 31.0}.get(arrange, 1.0)
    assert took <= limit


async def test_an_inconclusive_canary_is_not_the_revisions_fault(world: World) -> None:
    """Prometheus down: nothing could measure the canary, so it is rolled back without a revert
    or a quarantine, and the same revision goes out once Prometheus answers again."""
    _prometheus_down(world)
    out = await world.sync()
    assert out.result == PassResult.ERROR
    assert not out.quarantine
    assert world.status().quarantine == ()
    assert not world.reverts()
    world.metrics.down = False
    again = await world.sync()
    assert again.result == PassResult.SUCCESS, again.message
    assert world.tasks("api") == ["3", "3", "3"]


async def test_services_roll_out_in_their_waves(world: World) -> None:
    """api rolls out after web: web's change is deployed and verified first, api's held canary
    comes after, and nginx-like later waves would follow."""
    stack = STACK_YML.replace(
        '        driftless.rollout.window: "30s"',
        '        driftless.rollout.window: "30s"\n        driftless.rollout.after: web',
    )
    world.remote.write({STACK_FILE: stack}, "api rolls out after web")
    assert (await world.sync()).result == PassResult.SUCCESS
    world.swarm.deployed.clear()
    world.release(web="2", api="2")
    out = await world.sync()
    assert out.result == PassResult.SUCCESS, out.message
    first, held, promoted = world.swarm.deployed
    assert first == {"web": image("web", "2")}  # api's change left out of the first wave
    assert held["api"] == promoted["api"] == image("api", "2")
    assert world.tasks("api") == ["2", "2", "2"]


async def test_a_failed_canary_in_a_later_wave_rolls_back_the_earlier_waves_too(
    world: World,
) -> None:
    stack = STACK_YML.replace(
        '        driftless.rollout.window: "30s"',
        '        driftless.rollout.window: "30s"\n        driftless.rollout.after: web',
    )
    world.remote.write({STACK_FILE: stack}, "api rolls out after web")
    await world.sync()
    world.metrics.values[error_rate("3")] = 0.4
    world.release(web="2", api="3")
    out = await world.sync()
    assert (out.result, out.reason) == (PassResult.ROLLED_BACK, Reason.ANALYSIS_FAILED)
    assert world.live("web") == "1"
    assert world.tasks("api") == ["1", "1", "1"]
    assert len(world.reverts()) == 1


async def test_the_rollout_is_visible_in_the_status_the_page_and_the_metrics(
    world: World,
) -> None:
    """Why a release was stopped stays readable after the pass: the wave, the canary's step,
    each analysis with its value and condition, the reason."""
    from reconciler.masking import Masker
    from reconciler.web.page import render_content
    from reconciler.web.settings import Site
    from reconciler.web.views import document

    _api_error_rate(world)
    async with world.agent() as agent:
        await agent.run_pass("manual")
        text = agent.metrics.exposition().decode()
        status = agent.status
    rollout = status.rollout
    assert rollout is not None
    assert (rollout.wave, rollout.waves) == (1, 1)
    [canary] = rollout.canaries
    assert (canary.service, canary.step) == ("api", "failed")
    [analysis] = canary.analyses
    assert (analysis.name, analysis.value, analysis.condition) == (
        "error-rate",
        0.4,
        "result < 0.05",
    )
    assert analysis.failed == 1
    assert rollout.stopped.startswith("AnalysisFailed: api canary: error-rate: 0.4")
    assert (
        'reconciler_canary_step{environment="test",service="api",stack="shop",step="failed"} 1.0'
        in text
    )
    value = 'reconciler_analysis_value{analysis="error-rate",environment="test",service="api"'
    assert f'{value},stack="shop"}} 0.4' in text
    from reconciler.cli.status import status_text

    text_lines = status_text(status, resuming=False).splitlines()
    assert "rollout: wave 1/1 (api)" in text_lines
    assert (
        "  api canary: failed: error-rate: 0.4 (result < 0.05) 0/1 successful, 1 failed (limit 0)"
        in text_lines
    )
    schema = json.loads((ROOT / "reconciler/web/static/status.schema.json").read_text())
    site = Site.from_config(world.config)
    jsonschema.validate(document(status, site, Masker()), schema)  # what /api/status serves
    page = render_content(
        status.to_dict(), Site.from_config(world.config), world.clock.now(), can_act=False
    )
    assert 'data-canary="api"' in page
    assert "error-rate" in page
    assert "result &lt; 0.05" in page
    assert "Stopped: AnalysisFailed" in page


async def test_prometheus_behind_a_network_that_is_not_there_never_blocks_a_pass(
    world: World,
) -> None:
    """The analyses reach Prometheus through a stack network that does not exist yet (a first
    deploy creates it): pre-flight does not refuse for it, and the canary it cannot measure
    is inconclusive, not stuck."""
    world.configure(analysis={"prometheus_url": "http://prometheus:9090", "network": "monitoring"})
    world.probes.missing.add("shop_monitoring")
    _api_good(world)
    out = await world.sync()
    assert (out.result, out.reason) == (PassResult.ERROR, Reason.ANALYSIS_INCONCLUSIVE)
    assert "network shop_monitoring not found" in out.message
    assert world.tasks("api") == ["1", "1", "1"]
    world.probes.missing.clear()
    assert (await world.sync()).result == PassResult.SUCCESS


async def test_a_failed_first_deploy_is_not_reverted(tmp_path: Path) -> None:
    """Reverting the commit that created the environment would delete its folder from git (and
    every later pass would find nothing to deploy): with nothing to go back to, the revision is
    rolled back and quarantined, and git is left alone."""
    world = World(tmp_path)
    world.swarm.crashing.add(image("web", "1"))
    head = world.remote.head()
    out = await world.sync()
    assert (out.result, out.reason) == (PassResult.ROLLED_BACK, Reason.HEALTH_CHECK_FAILED)
    assert world.remote.head() == head
    assert not world.reverts()
    assert world.status().quarantine[0].revision.sha == head
    again = await world.sync()
    assert (again.result, again.reason) == (PassResult.REFUSED, Reason.QUARANTINED)
    world.swarm.crashing.clear()
    world.release(web="2", subject="Fix web")
    assert (await world.sync()).result == PassResult.SUCCESS


# ------------------------------------------------------------------ images by digest


async def test_images_are_deployed_by_the_digest_preflight_resolved(world: World) -> None:
    world.release(web="2")
    assert (await world.sync()).result == PassResult.SUCCESS
    web = image("web", "2")
    assert world.swarm.pinned_image(STACK, "web") == f"{web}@{world.swarm.digest(web)}"
    services = {s.name: s for s in world.status().inventory}
    assert services["web"].live_digest == world.swarm.digest(web)


async def test_a_tag_pushed_again_is_reported_and_never_rolled_out_silently(
    world: World,
) -> None:
    """The tag of the running web image is pushed again: the next passes say so, web keeps
    running the digest it was deployed with, also when a release of api deploys the stack."""
    web = image("web", "1")
    deployed = world.swarm.pinned_image(STACK, "web")
    assert deployed == f"{web}@{world.swarm.digest(web)}"
    world.swarm.repush(web)
    out = await world.sync()
    assert (out.result, out.reason) == (PassResult.NOOP, Reason.IN_SYNC)
    services = {s.name: s for s in world.status().inventory}
    assert "web: the tag of registry.test:5000/shop/web:1 was pushed again" in (
        services["web"].tag_moved
    )
    assert "not rolled out" in services["web"].tag_moved
    assert services["api"].tag_moved == ""
    from reconciler.web.page import render_content
    from reconciler.web.settings import Site

    page = render_content(
        world.status().to_dict(), Site.from_config(world.config), world.clock.now(), can_act=False
    )
    assert "was pushed again" in page
    assert f"<code>{world.swarm.digest(web)[:19]}" not in page  # web runs the old digest
    assert f"<code>{deployed.split('@')[1][:19]}</code>" in page
    world.release(web="1", api="2")
    assert (await world.sync()).result == PassResult.SUCCESS
    assert world.swarm.pinned_image(STACK, "web") == deployed
    api = image("api", "2")
    assert world.swarm.pinned_image(STACK, "api") == f"{api}@{world.swarm.digest(api)}"


async def test_the_revert_names_the_digests_that_failed(world: World) -> None:
    _crashing(world)
    await world.sync()
    web = image("web", "3")
    assert f"- {web}@{world.swarm.digest(web)}" in world.remote.message()
