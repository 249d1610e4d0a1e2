"""Rollouts declared next to the service (``driftless.rollout.*``): the canary step's size and
window, the waves, and every mistake refused with its reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.adapters.compose_merge import cli_merge
from reconciler.desired import RenderOptions, render
from reconciler.errors import ValidationError
from reconciler.rollout import DEFAULT_WINDOW, RolloutSpec, rollout_from_labels, waves

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "tests" / "fixtures" / "desired-state" / "example"
PRODUCTION = ROOT / "desired-state" / "production"


def _labels(**values: str) -> dict[str, str]:
    return {f"driftless.rollout.{k}": v for k, v in values.items()}


def test_a_checked_service_of_several_replicas_gets_a_canary_step_by_default() -> None:
    spec, problems = rollout_from_labels("api", {}, mode="replicated", replicas=3, checked=True)
    assert (spec, problems) == (RolloutSpec(canary=1, window=DEFAULT_WINDOW), [])
    for replicas, checked in ((1, True), (3, False), (None, True)):
        spec, _ = rollout_from_labels(
            "api", {}, mode="replicated", replicas=replicas, checked=checked
        )
        assert spec.canary == 0, (replicas, checked)
    spec, _ = rollout_from_labels("agent", {}, mode="global", replicas=None, checked=True)
    assert spec.canary == 0


def test_labels_set_the_canary_its_window_and_what_comes_first() -> None:
    labels = _labels(canary="2", window="45s", after="migrate, db ,migrate")
    spec, problems = rollout_from_labels(
        "api", labels, mode="replicated", replicas=5, checked=False
    )
    assert problems == []
    assert spec == RolloutSpec(canary=2, window=45.0, after=("migrate", "db"))
    off, _ = rollout_from_labels(
        "api", _labels(canary="0"), mode="replicated", replicas=3, checked=True
    )
    assert off.canary == 0


@pytest.mark.parametrize(
    ("labels", "mode", "replicas", "problem"),
    [
        (_labels(canary="3"), "replicated", 3, "must be fewer than the service's 3 replicas"),
        (_labels(canary="one"), "replicated", 3, "'one' is not a number of tasks"),
        (_labels(canary="-1"), "replicated", 3, "must not be negative"),
        (_labels(canary="1"), "global", None, "needs a replicated service, not global"),
        (_labels(window="soon"), "replicated", 3, "label driftless.rollout.window"),
        (_labels(window="0s"), "replicated", 3, "window must be positive"),
        (_labels(after="api"), "replicated", 3, "names the service itself"),
        (_labels(canaries="1"), "replicated", 3, "unknown label driftless.rollout.canaries"),
    ],
)
def test_mistakes_are_problems_named_after_the_service(
    labels: dict[str, str], mode: str, replicas: int | None, problem: str
) -> None:
    _, problems = rollout_from_labels("api", labels, mode=mode, replicas=replicas, checked=True)
    assert len(problems) == 1
    assert problems[0].startswith("service api: ")
    assert problem in problems[0]


def test_services_roll_out_in_waves_after_what_they_wait_for() -> None:
    order = waves(
        {
            "nginx": RolloutSpec(after=("api",)),
            "api": RolloutSpec(after=("migrate",)),
            "migrate": RolloutSpec(),
            "redis": RolloutSpec(),
        }
    )
    assert order == (("migrate", "redis"), ("api",), ("nginx",))


def test_unknown_names_and_cycles_are_refused() -> None:
    with pytest.raises(ValueError, match="api rolls out after 'db', which is not a service"):
        waves({"api": RolloutSpec(after=("db",))})
    with pytest.raises(ValueError, match="makes a cycle among: a, b"):
        waves({"a": RolloutSpec(after=("b",)), "b": RolloutSpec(after=("a",)), "c": RolloutSpec()})


def test_a_cycle_in_a_desired_state_folder_refuses_the_revision(tmp_path: Path) -> None:
    folder = tmp_path / "env"
    shutil.copytree(EXAMPLE, folder)
    stack = (folder / "stack.yml").read_text()
    stack = stack.replace(
        '        driftless.health.timeout: "20s"',
        '        driftless.health.timeout: "20s"\n        driftless.rollout.after: worker',
    ).replace(
        '        driftless.health.soak: "5s"',
        '        driftless.health.soak: "5s"\n        driftless.rollout.after: web',
    )
    (folder / "stack.yml").write_text(stack)
    with pytest.raises(ValidationError) as info:
        render(folder, RenderOptions(stack="demo", environment="test", repo_root=tmp_path))
    assert any("cycle among: web, worker" in p for p in info.value.problems)


def test_the_production_api_rolls_out_with_a_canary_step_after_its_migration() -> None:
    # its secrets.sops.yaml checked, not decrypted: no key of it is here
    options = RenderOptions(
        "driftless", "production", repo_root=ROOT, decrypt=False, merge=cli_merge()
    )
    desired = render(PRODUCTION, options)
    api = desired.service("api")
    assert api is not None
    assert api.rollout.canary == 1
    assert api.rollout.window == 30.0
    wave = {name: i for i, names in enumerate(desired.waves) for name in names}
    assert wave["migrate"] < wave["api"] < wave["nginx"]
