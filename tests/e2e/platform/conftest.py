"""The deployed platform that tests/e2e/platform/ share: built, deployed by the reconciler, removed.

One deployment for the whole module (a first deploy takes about two minutes on two cores); the
tests run in file order and build on each other, as a release history does: deploy, bump, bad
bump, restart the database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_harness import (
    SECRETS_SCRIPT,
    UNAVAILABLE,
    DesiredRepo,
    Platform,
    Reconciler,
    build_images,
    prepare_stack,
    run,
)


@pytest.fixture(scope="module")
def platform(
    registry: str, artifacts_dir: Path, request: pytest.FixtureRequest
) -> Iterator[Platform]:
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    name = f"{prefix}pf"
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    images = build_images(registry)
    stack, variables = prepare_stack(name, workdir)
    secrets_dir = workdir / "secrets"
    assert {"grafana", "loki", "alloy", "cadvisor"} == set(UNAVAILABLE)
    repo = DesiredRepo(workdir)
    first = repo.init(images.local(images.api_v1))
    reconciler = Reconciler(workdir, name, repo, variables, probe_image=images.api_v1)
    plat = Platform(images, repo, reconciler, stack, secrets_dir, first)
    failed_before = request.session.testsfailed
    try:
        reconciler.start()
        yield plat
    finally:
        reconciler.stop()
        logs = artifacts_dir / "platform-e2e"
        logs.mkdir(parents=True, exist_ok=True)
        if reconciler.log_path.exists():
            shutil.copy(reconciler.log_path, logs / "reconciler.log")
        failed = request.session.testsfailed > failed_before
        for svc in ("api", "nginx", "postgres") if failed else ():  # the services' logs: slow
            try:  # `docker service logs` can hang on tasks that are going away: bounded
                out = run(
                    "docker",
                    "service",
                    "logs",
                    "--tail",
                    "200",
                    f"{name}_{svc}",
                    check=False,
                    timeout=20,
                )
            except subprocess.TimeoutExpired:
                out = "(docker service logs did not answer within 20 s)"
            (logs / f"{svc}.log").write_text(out)
        stack.remove(SECRETS_SCRIPT)
        shutil.rmtree(workdir, ignore_errors=True)
