"""Off-site copies: scripts/backup.sh uploads each new backup and its checksum with rclone.

MinIO has no Debian or PyPI package, so the S3-compatible server here is moto's S3 server (a
real HTTP server speaking the S3 protocol, from PyPI); rclone is Debian's real rclone, configured
exactly as on the VM (BACKUP_S3_* settings, credentials from files).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from ops_support.backups import BACKUP, SCHEMA, psql, run

ACCESS_KEY = "driftless-test-key"
SECRET_KEY = "driftless-test-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the S3 test server did not start")
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def bucket(s3_endpoint: str, unique_name: str) -> str:
    name = unique_name.lower()
    client(s3_endpoint).create_bucket(Bucket=name)
    return name


def client(endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )


@pytest.fixture
def credentials(tmp_path: Path) -> dict[str, str]:
    key_file, secret_file = tmp_path / "s3_key", tmp_path / "s3_secret"
    key_file.write_text(ACCESS_KEY + "\n")
    secret_file.write_text(SECRET_KEY + "\n")
    for f in (key_file, secret_file):
        f.chmod(0o600)
    return {
        "BACKUP_S3_ACCESS_KEY_ID_FILE": str(key_file),
        "BACKUP_S3_SECRET_ACCESS_KEY_FILE": str(secret_file),
        "BACKUP_S3_PROVIDER": "Minio",
        "BACKUP_S3_PREFIX": "vm1",
    }


def test_new_backups_and_checksums_are_uploaded(
    pg_database: str, tmp_path: Path, s3_endpoint: str, bucket: str, credentials: dict[str, str]
) -> None:
    psql(pg_database, SCHEMA)
    result = run(
        BACKUP, "postgres", "--url", pg_database, "--dir", str(tmp_path / "b"),
        BACKUP_S3_BUCKET=bucket, BACKUP_S3_ENDPOINT=s3_endpoint, **credentials,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (dump,) = (tmp_path / "b" / "postgres").glob("*.dump")
    objects = client(s3_endpoint).list_objects_v2(Bucket=bucket)["Contents"]
    keys = sorted(o["Key"] for o in objects)
    assert keys == [f"vm1/postgres/{dump.name}", f"vm1/postgres/{dump.name}.sha256"]
    body = client(s3_endpoint).get_object(Bucket=bucket, Key=f"vm1/postgres/{dump.name}")
    assert body["Body"].read() == dump.read_bytes()
    assert SECRET_KEY not in result.stdout + result.stderr


def test_a_failed_upload_keeps_the_local_backup_and_exits_3(
    pg_database: str, tmp_path: Path, credentials: dict[str, str]
) -> None:
    result = run(
        BACKUP, "postgres", "--url", pg_database, "--dir", str(tmp_path / "b"),
        BACKUP_S3_BUCKET="nowhere", BACKUP_S3_ENDPOINT=f"http://127.0.0.1:{free_port()}",
        RCLONE_RETRIES="1", RCLONE_LOW_LEVEL_RETRIES="1", RCLONE_CONTIMEOUT="2s",
        BACKUP_TEXTFILE_DIR=str(tmp_path / "textfile"), **credentials,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "upload of" in result.stderr
    (dump,) = (tmp_path / "b" / "postgres").glob("*.dump")
    # the metrics: a good local backup, but a failed run (BackupFailed fires)
    metrics = (tmp_path / "textfile" / "driftless_backup_postgres.prom").read_text()
    assert 'driftless_backup_last_run_success{kind="postgres"} 0\n' in metrics
    assert f'driftless_backup_size_bytes{{kind="postgres"}} {dump.stat().st_size}\n' in metrics
    assert SECRET_KEY not in result.stdout + result.stderr
