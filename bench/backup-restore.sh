#!/usr/bin/env bash
# How long backups and restores take, on a database of a known size. Prints the figures.
#
#   bench/backup-restore.sh [ROWS]        (default 500000 order rows; needs scripts/testenv.sh up pg)
#
# Fills a scratch database in the test PostgreSQL with ROWS orders (and ROWS/10 customers), then
# times scripts/backup.sh postgres, scripts/restore.sh verify, a full restore over the same
# database, and a bootstrap-vm.sh --root run (first and idempotent second run).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROWS="${1:-500000}"
[[ "$ROWS" =~ ^[0-9]+$ ]] || { echo "usage: $0 [ROWS]" >&2; exit 2; }
# shellcheck source=/dev/null
. "$ROOT/.cache/testenv/env"
export PATH="$TEST_PG_BIN:$PATH" BACKUP_CONFIG=/nonexistent
db="bench_backup_$$"
work="$(mktemp -d)"
admin="$TEST_PG_ADMIN_URL"
url="${admin%/*}/$db"
cleanup() {
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

seconds() { # seconds COMMAND...: run it quietly, print the wall time
  local start cs
  start="$(date +%s%N)"
  "$@" >/dev/null 2>&1
  cs=$((($(date +%s%N) - start) / 10000000))
  printf '%d.%02d' $((cs / 100)) $((cs % 100))
}

psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
psql "$url" -q >/dev/null <<SQL
CREATE TABLE customers (id serial PRIMARY KEY, email text UNIQUE NOT NULL, profile jsonb);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id),
  total numeric(12,2) NOT NULL, note text, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO customers (email, profile)
  SELECT 'user' || i || '@example.com', jsonb_build_object('n', i) FROM generate_series(1, $ROWS / 10 + 1) i;
INSERT INTO orders (customer_id, total, note)
  SELECT 1 + (i % ($ROWS / 10 + 1)), i * 0.5, 'order ' || i FROM generate_series(1, $ROWS) i;
SQL
size="$(psql "$url" -Atc "SELECT pg_size_pretty(pg_database_size('$db'))")"

t_backup="$(seconds "$ROOT/scripts/backup.sh" postgres --url "$url" --dir "$work" --no-upload)"
dump="$(ls "$work"/postgres/*.dump)"
dump_size="$(du -h "$dump" | cut -f1)"
t_verify="$(seconds "$ROOT/scripts/restore.sh" verify "$dump")"
t_restore="$(seconds "$ROOT/scripts/restore.sh" postgres "$dump" --url "$url" --yes)"
rows_back="$(psql "$url" -Atc "SELECT count(*) FROM orders")"

vm="$work/vm"
mkdir -p "$vm/etc" "$vm/home/a/.ssh"
printf 'root:x:0:0::/root:/bin/bash\na:x:1000:1000::/home/a:/bin/bash\n' >"$vm/etc/passwd"
printf 'sudo:x:27:a\n' >"$vm/etc/group"
echo "ssh-ed25519 AAAA a" >"$vm/home/a/.ssh/authorized_keys"
t_boot1="$(seconds "$ROOT/scripts/bootstrap-vm.sh" --root "$vm" --repo-url git@github.com:a/b.git)"
t_boot2="$(seconds "$ROOT/scripts/bootstrap-vm.sh" --root "$vm")"

echo "database: $ROWS orders, $((ROWS / 10 + 1)) customers, $size on disk"
echo "backup.sh postgres (pg_dump -Fc, check, checksum): ${t_backup} s, dump $dump_size"
echo "restore.sh verify (sha256 + pg_restore --list):     ${t_verify} s"
echo "restore.sh postgres (one transaction, over it):      ${t_restore} s, $rows_back orders back"
echo "bootstrap-vm.sh --root, first run:                   ${t_boot1} s"
echo "bootstrap-vm.sh --root, second run (no changes):     ${t_boot2} s"
