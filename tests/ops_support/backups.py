"""Helpers shared by the backup tests: run the scripts as the timer does, query PostgreSQL."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "scripts" / "backup.sh"
RESTORE = ROOT / "scripts" / "restore.sh"


def script_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKUP_")}
    pg_bin = os.environ.get("TEST_PG_BIN")
    if pg_bin:  # the client tools of the test server's version
        env["PATH"] = f"{pg_bin}:{env['PATH']}"
    env["BACKUP_CONFIG"] = "/nonexistent"  # never read the machine's /etc/driftless/backup.env
    env.update(extra)
    return env


def run(script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        env=script_env(**env),
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=120,
    )


def psql(url: str, sql: str) -> str:
    return subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        capture_output=True,
        text=True,
        check=True,
        env=script_env(),
    ).stdout


SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, email text UNIQUE NOT NULL, profile jsonb);
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers(id),
  total numeric(12,2) NOT NULL,
  note text,
  payload bytea,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (email, profile)
  SELECT 'user' || i || '@example.com', jsonb_build_object('n', i, 'name', 'Zoë ' || i)
  FROM generate_series(1, 300) AS i;
INSERT INTO orders (customer_id, total, note, payload)
  SELECT 1 + (i % 300), i * 1.25, CASE WHEN i % 7 = 0 THEN NULL ELSE 'ordre n°' || i END,
         decode(md5(i::text), 'hex')
  FROM generate_series(1, 2000) AS i;
"""
SNAPSHOT = """
SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) || ':' || count(*) FROM customers t;
SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) || ':' || count(*) FROM orders t;
"""
