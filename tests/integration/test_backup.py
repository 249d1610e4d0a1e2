"""Backups and restores against the real test PostgreSQL and real files.

Everything here runs scripts/backup.sh and scripts/restore.sh the way the systemd timer and an
operator do, then checks what an operator would check: every row is back, a damaged file is
refused without touching the database, rotation keeps the right files, no password is printed.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ops_support.backups import BACKUP, RESTORE, SCHEMA, SNAPSHOT, psql, run


def snapshot(url: str) -> str:
    return psql(url, SNAPSHOT)


@pytest.fixture
def shop_db(pg_database: str) -> str:
    psql(pg_database, SCHEMA)
    return pg_database


def make_backup(url: str, backup_dir: Path) -> Path:
    result = run(BACKUP, "postgres", "--url", url, "--dir", str(backup_dir), "--no-upload")
    assert result.returncode == 0, result.stderr
    dumps = sorted((backup_dir / "postgres").glob("*.dump"))
    assert len(dumps) == 1
    return dumps[0]


def test_backup_wipe_restore_brings_every_row_back(shop_db: str, tmp_path: Path) -> None:
    before = snapshot(shop_db)
    dump = make_backup(shop_db, tmp_path)
    checksum = dump.with_name(dump.name + ".sha256")
    assert checksum.exists()
    subprocess.run(
        ["sha256sum", "-c", checksum.name], cwd=dump.parent, check=True, capture_output=True
    )
    assert dump.read_bytes()[:5] == b"PGDMP", "custom-format dump"
    assert dump.stat().st_mode & 0o077 == 0, "backups are readable by their owner only"

    psql(shop_db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    assert psql(shop_db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0\n"

    result = run(RESTORE, "postgres", str(dump), "--url", shop_db, "--yes")
    assert result.returncode == 0, result.stderr
    assert snapshot(shop_db) == before
    # constraints and sequences came back too: the next order gets a fresh id
    new_id = psql(shop_db, "INSERT INTO orders (customer_id, total) VALUES (1, 1) RETURNING id")
    assert int(new_id) == 2001
    with pytest.raises(subprocess.CalledProcessError):
        psql(shop_db, "INSERT INTO orders (customer_id, total) VALUES (99999, 1)")


def test_restore_over_a_changed_database_returns_it_to_the_backup(
    shop_db: str, tmp_path: Path
) -> None:
    before = snapshot(shop_db)
    dump = make_backup(shop_db, tmp_path)
    psql(shop_db, "DELETE FROM orders WHERE id > 100; UPDATE customers SET email = 'x' || id;")
    assert run(RESTORE, "postgres", str(dump), "--url", shop_db, "--yes").returncode == 0
    assert snapshot(shop_db) == before


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))


def test_a_corrupted_backup_is_refused_and_the_database_is_untouched(
    shop_db: str, tmp_path: Path
) -> None:
    dump = make_backup(shop_db, tmp_path)
    psql(shop_db, "DELETE FROM orders WHERE id > 10")
    after_change = snapshot(shop_db)
    corrupt(dump)

    for cmd in (["verify", str(dump)], ["postgres", str(dump), "--url", shop_db, "--yes"]):
        result = run(RESTORE, *cmd)
        assert result.returncode == 1
        assert "checksum mismatch" in result.stderr
    assert snapshot(shop_db) == after_change


def test_a_truncated_backup_with_a_matching_checksum_changes_nothing(
    shop_db: str, tmp_path: Path
) -> None:
    """Someone re-generated the checksum of a cut-off file: the restore still fails as a whole."""
    dump = make_backup(shop_db, tmp_path)
    psql(shop_db, "DELETE FROM orders WHERE id > 10")
    after_change = snapshot(shop_db)
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
    digest = hashlib.sha256(dump.read_bytes()).hexdigest()
    dump.with_name(dump.name + ".sha256").write_text(f"{digest}  {dump.name}\n")
    result = run(RESTORE, "postgres", str(dump), "--url", shop_db, "--yes")
    assert result.returncode == 1
    assert "the database is unchanged" in result.stderr or "refusing" in result.stderr
    assert snapshot(shop_db) == after_change


def test_a_backup_without_its_checksum_is_refused(shop_db: str, tmp_path: Path) -> None:
    dump = make_backup(shop_db, tmp_path)
    dump.with_name(dump.name + ".sha256").unlink()
    result = run(RESTORE, "postgres", str(dump), "--url", shop_db, "--yes")
    assert result.returncode == 1
    assert "checksum file" in result.stderr


def test_restore_needs_confirmation(shop_db: str, tmp_path: Path) -> None:
    dump = make_backup(shop_db, tmp_path)
    psql(shop_db, "DELETE FROM orders")
    result = run(RESTORE, "postgres", str(dump), "--url", shop_db)
    assert result.returncode == 1
    assert "--yes" in result.stderr
    assert psql(shop_db, "SELECT count(*) FROM orders") == "0\n"


def test_a_failed_dump_keeps_nothing_and_never_prints_the_password(
    pg_admin_url: str, tmp_path: Path
) -> None:
    base = pg_admin_url.rsplit("/", 1)[0].replace("postgres@", "postgres:s3cret-pw@")
    result = run(
        BACKUP, "postgres", "--url", f"{base}/no_such_db", "--dir", str(tmp_path), "--no-upload"
    )
    assert result.returncode == 1
    assert "pg_dump failed" in result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "postgres:***@" in result.stderr
    assert list((tmp_path / "postgres").iterdir()) == []


# ---------------------------------------------------------------- metrics


def read_metrics(path: Path) -> dict[str, float]:
    """``name{labels}`` -> value of a Prometheus text file, after promtool accepted it."""
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=path.read_text(), capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    samples = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_each_run_records_its_outcome_for_the_node_exporter(
    shop_db: str, pg_admin_url: str, tmp_path: Path
) -> None:
    textfile = tmp_path / "textfile"  # created by the script, readable by the node exporter
    args = ("--dir", str(tmp_path / "b"), "--no-upload")
    started = datetime.now(UTC).timestamp()
    ok = run(BACKUP, "postgres", "--url", shop_db, *args, BACKUP_TEXTFILE_DIR=str(textfile))
    assert ok.returncode == 0, ok.stderr
    (dump,) = (tmp_path / "b" / "postgres").glob("*.dump")
    prom = textfile / "driftless_backup_postgres.prom"
    assert textfile.stat().st_mode & 0o777 == 0o755
    assert prom.stat().st_mode & 0o777 == 0o644
    good = read_metrics(prom)
    assert good['driftless_backup_last_run_success{kind="postgres"}'] == 1
    assert good['driftless_backup_last_success_timestamp_seconds{kind="postgres"}'] == int(
        dump.stat().st_mtime
    )
    assert good['driftless_backup_size_bytes{kind="postgres"}'] == dump.stat().st_size
    assert started - 1 <= good['driftless_backup_last_run_timestamp_seconds{kind="postgres"}']

    # a failed run: recorded as failed, the last good backup's time and size are kept
    base = pg_admin_url.rsplit("/", 1)[0]
    bad = run(
        BACKUP, "postgres", "--url", f"{base}/no_such_db", *args, BACKUP_TEXTFILE_DIR=str(textfile)
    )
    assert bad.returncode == 1
    failed = read_metrics(prom)
    assert failed['driftless_backup_last_run_success{kind="postgres"}'] == 0
    for kept in ("last_success_timestamp_seconds", "size_bytes"):
        name = f'driftless_backup_{kept}{{kind="postgres"}}'
        assert failed[name] == good[name], name
    assert [p.name for p in textfile.iterdir()] == [prom.name]  # no temporary file left

    # a failure before any good backup: only the run is recorded (BackupMissing covers it)
    never = run(BACKUP, "grafana", "--grafana-data", str(tmp_path / "none"), *args,
                BACKUP_TEXTFILE_DIR=str(textfile))  # fmt: skip
    assert never.returncode == 1
    assert read_metrics(textfile / "driftless_backup_grafana.prom").keys() == {
        'driftless_backup_last_run_timestamp_seconds{kind="grafana"}',
        'driftless_backup_last_run_success{kind="grafana"}',
    }


# ---------------------------------------------------------------- rotation


def fake_backups(directory: Path, first: datetime, days: int) -> None:
    directory.mkdir(parents=True)
    for n in range(days):
        stamp = (first + timedelta(days=n)).strftime("%Y%m%dT%H%M%SZ")
        (directory / f"driftless-postgres-{stamp}.dump").write_text(stamp)
        (directory / f"driftless-postgres-{stamp}.dump.sha256").write_text("x")


def kept_days(directory: Path) -> list[str]:
    return sorted(p.name[19:27] for p in directory.glob("*.dump"))


def test_rotation_keeps_7_daily_4_weekly_6_monthly(tmp_path: Path) -> None:
    directory = tmp_path / "postgres"
    # one nightly backup from 2025-01-01 to 2025-04-30, plus a second one on the last day
    fake_backups(directory, datetime(2025, 1, 1, 2, 30, tzinfo=UTC), 120)
    (directory / "driftless-postgres-20250430T120000Z.dump").write_text("later")
    (directory / "driftless-postgres-20250102T023000Z-before-upgrade.dump").write_text("label")

    result = run(BACKUP, "prune", "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    # by hand: the last 7 days (Apr 24-30, newest of Apr 30); the newest of ISO weeks 18 (Apr 30),
    # 17 (Sun Apr 27), 16 (Apr 20), 15 (Apr 13); the newest of Apr, Mar 31, Feb 28, Jan 31.
    assert kept_days(directory) == [
        "20250102",  # the labelled backup is never rotated away
        "20250131", "20250228", "20250331", "20250413", "20250420",
        "20250424", "20250425", "20250426", "20250427", "20250428", "20250429", "20250430",
    ]  # fmt: skip
    assert not (directory / "driftless-postgres-20250430T023000Z.dump").exists()
    assert (directory / "driftless-postgres-20250430T120000Z.dump").exists()
    # the checksums of removed backups went with them
    assert len(list(directory.glob("*.sha256"))) == 11

    again = run(BACKUP, "prune", "--dir", str(tmp_path))
    assert again.returncode == 0
    assert "0 removed" in again.stderr
    assert len(kept_days(directory)) == 13


def test_rotation_honours_the_configured_counts(tmp_path: Path) -> None:
    directory = tmp_path / "postgres"
    fake_backups(directory, datetime(2025, 3, 1, 2, 30, tzinfo=UTC), 10)
    config = tmp_path / "backup.env"
    config.write_text("BACKUP_KEEP_DAILY=2\nBACKUP_KEEP_WEEKLY=0\nBACKUP_KEEP_MONTHLY=1\n")
    result = run(BACKUP, "prune", "--dir", str(tmp_path), BACKUP_CONFIG=str(config))
    assert result.returncode == 0, result.stderr
    assert kept_days(directory) == ["20250309", "20250310"]


def test_invalid_retention_is_refused(tmp_path: Path) -> None:
    result = run(BACKUP, "prune", "--dir", str(tmp_path), BACKUP_KEEP_DAILY="seven")
    assert result.returncode == 1
    assert "BACKUP_KEEP_DAILY must be a whole number" in result.stderr


# ---------------------------------------------------------------- Grafana


@pytest.fixture
def grafana_data(tmp_path: Path) -> Path:
    data = tmp_path / "grafana-data"
    data.mkdir()
    db = sqlite3.connect(data / "grafana.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE dashboard (id INTEGER PRIMARY KEY, uid TEXT, data TEXT)")
    db.executemany(
        "INSERT INTO dashboard (uid, data) VALUES (?, ?)",
        [(f"uid{i}", f'{{"title": "Board {i}"}}') for i in range(50)],
    )
    db.commit()
    db.close()
    return data


def dashboards(data: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(data / "grafana.db") as db:
        return db.execute("SELECT * FROM dashboard ORDER BY id").fetchall()


def test_grafana_backup_and_restore(grafana_data: Path, tmp_path: Path) -> None:
    provisioning = tmp_path / "provisioning" / "datasources"
    provisioning.mkdir(parents=True)
    (provisioning / "prometheus.yml").write_text("apiVersion: 1\n")
    before = dashboards(grafana_data)

    result = run(
        BACKUP, "grafana", "--dir", str(tmp_path / "b"), "--no-upload",
        "--grafana-data", str(grafana_data),
        "--grafana-provisioning", str(tmp_path / "provisioning"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (archive,) = (tmp_path / "b" / "grafana").glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"grafana.db", "provisioning/datasources/prometheus.yml"} <= names

    with sqlite3.connect(grafana_data / "grafana.db") as db:
        db.execute("DELETE FROM dashboard WHERE id > 5")
    result = run(RESTORE, "grafana", str(archive), "--grafana-data", str(grafana_data), "--yes")
    assert result.returncode == 0, result.stderr
    assert dashboards(grafana_data) == before

    corrupt(archive)
    result = run(RESTORE, "grafana", str(archive), "--grafana-data", str(grafana_data), "--yes")
    assert result.returncode == 1
    assert "checksum mismatch" in result.stderr


def test_all_backs_up_both_and_rotates(shop_db: str, grafana_data: Path, tmp_path: Path) -> None:
    config = tmp_path / "backup.env"
    config.write_text(
        f"BACKUP_DIR={tmp_path / 'b'}\n"
        f"BACKUP_PG_URL={shop_db}\n"
        f"BACKUP_GRAFANA_DATA={grafana_data}\n"
    )
    result = run(BACKUP, "all", BACKUP_CONFIG=str(config))
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "b" / "postgres").glob("*.dump"))) == 1
    assert len(list((tmp_path / "b" / "grafana").glob("*.tar.gz"))) == 1
    assert "postgres: 1 kept, 0 removed" in result.stderr
    listing = run(BACKUP, "list", BACKUP_CONFIG=str(config))
    assert "driftless-postgres-" in listing.stdout
    assert "driftless-grafana-" in listing.stdout
