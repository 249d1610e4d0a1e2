"""Back up and restore the database of a running Swarm PostgreSQL service, as the nightly timer
does on the VM: scripts/backup.sh finds the service's container and runs pg_dump inside it.

The service runs the local stand-in of the postgres image (images/local/postgres: Debian's
PostgreSQL 15 with the upstream image's POSTGRES_* contract), built here if it is missing.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_support.backups import BACKUP, RESTORE, SCHEMA, SNAPSHOT, run

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def sh(*args: str, stdin: str | None = None, check: bool = True) -> str:
    result = subprocess.run(
        list(args), input=stdin, capture_output=True, text=True, check=False, timeout=600
    )
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@pytest.fixture(scope="module")
def postgres_image(registry: str, base_image: str) -> str:
    ref = f"{registry}/driftless/postgres:local"
    if subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode != 0:
        sh("docker", "build", "-q", "-t", ref, "--build-arg", f"BASE_IMAGE={base_image}",
           str(ROOT / "images/local/postgres"))  # fmt: skip
    return ref


@pytest.fixture
def postgres_service(postgres_image: str, unique_name: str) -> Iterator[str]:
    name = f"{unique_name}_postgres"
    sh(
        "docker", "service", "create", "--detach", "--name", name,
        "--label", f"driftless.test={unique_name}",
        "--container-label", f"driftless.test={unique_name}",
        "--env", "POSTGRES_USER=driftless", "--env", "POSTGRES_DB=driftless",
        "--env", "POSTGRES_PASSWORD=not-used-locally", postgres_image,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            cid = sh("docker", "ps", "-q", "--filter",
                     f"label=com.docker.swarm.service.name={name}").strip()  # fmt: skip
            # the entrypoint runs a temporary server while it initialises: wait for the real one
            if (
                cid
                and "init process complete" in sh("docker", "logs", cid, check=False)
                and subprocess.run(
                    ["docker", "exec", cid, "pg_isready", "-U", "driftless", "-d", "driftless"],
                    capture_output=True,
                ).returncode
                == 0
            ):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not become ready:\n" + sh("docker", "service", "ps",
                            "--no-trunc", name, check=False))  # fmt: skip
            time.sleep(1)
        yield name
    finally:
        sh("docker", "service", "rm", name, check=False)


def service_psql(service: str, sql: str) -> str:
    cid = sh("docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}")
    return sh("docker", "exec", "-i", cid.strip(), "psql", "-U", "driftless", "-d", "driftless",
              "-v", "ON_ERROR_STOP=1", "-qAt", stdin=sql)  # fmt: skip


def test_backup_from_the_running_service_and_restore_into_it(
    postgres_service: str, tmp_path: Path
) -> None:
    service_psql(postgres_service, SCHEMA)
    before = service_psql(postgres_service, SNAPSHOT)

    result = run(BACKUP, "postgres", "--dir", str(tmp_path), "--no-upload",
                 BACKUP_PG_SERVICE=postgres_service)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"dumping the database of {postgres_service}" in result.stderr
    (dump,) = (tmp_path / "postgres").glob("*.dump")

    service_psql(postgres_service, "DROP TABLE orders; DELETE FROM customers WHERE id > 3;")
    restored = run(RESTORE, "postgres", str(dump), "--yes", BACKUP_PG_SERVICE=postgres_service)
    assert restored.returncode == 0, restored.stderr
    assert service_psql(postgres_service, SNAPSHOT) == before


def test_no_running_service_is_a_clear_error(unique_name: str, tmp_path: Path) -> None:
    result = run(BACKUP, "postgres", "--dir", str(tmp_path), "--no-upload",
                 BACKUP_PG_SERVICE=f"{unique_name}_nothing")  # fmt: skip
    assert result.returncode == 1
    assert "no running container of" in result.stderr
    assert list((tmp_path / "postgres").iterdir()) == []
