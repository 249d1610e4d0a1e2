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
    ROOT,
    UNAVAILABLE,
    DesiredRepo,
    Platform,
    Reconciler,
    Stack,
    build_images,
    free_port,
    run,
)

SECRETS = ROOT / "scripts" / "make-secrets.sh"


@pytest.fixture(scope="module")
def platform(registry: str, artifacts_dir: Path) -> Iterator[Platform]:
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    name = f"{prefix}pf"
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    images = build_images(registry)
    https_port = free_port()
    secrets_dir = workdir / "secrets"
    stack = Stack(name, https_port, secrets_dir / "tls_fallback_cert")
    stack.remove(SECRETS)  # whatever a run that died half way left behind
    run(SECRETS, "create", name, secrets_dir)
    # node-exporter mounts the backup metrics directory, as on the VM (the bootstrap makes it)
    Path("/var/lib/prometheus/node-exporter").mkdir(parents=True, exist_ok=True)
    variables = {
        "DRIFTLESS_SECRETS_PREFIX": name,
        "DRIFTLESS_HTTP_PORT": str(free_port()),
        "DRIFTLESS_HTTPS_PORT": str(https_port),
        "DRIFTLESS_GRAFANA_REPLICAS": "0",
        "DRIFTLESS_LOKI_REPLICAS": "0",
        "DRIFTLESS_ALLOY_OS": "none",
        "DRIFTLESS_CADVISOR_OS": "none",
    }
    assert {"grafana", "loki", "alloy", "cadvisor"} == set(UNAVAILABLE)
    repo = DesiredRepo(workdir)
    first = repo.init(images.local(images.api_v1))
    reconciler = Reconciler(workdir, name, repo, variables, probe_image=images.api_v1)
    plat = Platform(images, repo, reconciler, stack, secrets_dir, first)
    try:
        reconciler.start()
        yield plat
    finally:
        reconciler.stop()
        logs = artifacts_dir / "platform-e2e"
        logs.mkdir(parents=True, exist_ok=True)
        if reconciler.log_path.exists():
            shutil.copy(reconciler.log_path, logs / "reconciler.log")
        for svc in ("api", "nginx", "postgres"):
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
        stack.remove(SECRETS)
        shutil.rmtree(workdir, ignore_errors=True)
