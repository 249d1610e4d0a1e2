#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh. The file is verified first (its .sha256 must exist
# and match, and the content must be readable); a corrupted or incomplete backup is refused and
# nothing is touched.
#
#   restore.sh verify FILE                           check a backup, change nothing
#   restore.sh postgres FILE [--url URL] [--yes]     restore the database (replaces its content)
#   restore.sh grafana FILE [--grafana-data DIR] [--yes]
#
# Without --url / --grafana-data the running services are used (driftless_postgres,
# driftless_grafana; see backup.sh for the settings). Restoring replaces what is there: it asks
# for confirmation on a terminal, and needs --yes otherwise. Stop writers first (see
# runbooks/BACKUP_RECOVERY.md): the PostgreSQL restore runs in one transaction, so it either
# fully succeeds or leaves the database as it was.
set -euo pipefail
# shellcheck source=scripts/lib/backup-common.sh
. "$(dirname "$(readlink -f "$0")")/lib/backup-common.sh"

cmd="${1:-}"
file="${2:-}"
[ -n "$cmd" ] && [ -n "$file" ] || usage
shift 2
YES=0
while [ "$#" -gt 0 ]; do
  case "$1" in
  --url) BACKUP_PG_URL="$2" && shift ;;
  --grafana-data) BACKUP_GRAFANA_DATA="$2" && shift ;;
  --yes) YES=1 ;;
  -h | --help) usage ;;
  *) bdie "unknown option: $1 (see --help)" ;;
  esac
  shift
done

confirm() { # confirm WHAT
  [ "$YES" -eq 1 ] && return 0
  [ -t 0 ] || bdie "restoring replaces $1; run again with --yes to confirm"
  local answer
  read -r -p "This replaces $1 with $(basename "$file"). Type 'restore' to go on: " answer
  [ "$answer" = "restore" ] || bdie "not confirmed; nothing changed"
}

restore_postgres() {
  local target
  if [ -n "$BACKUP_PG_URL" ]; then
    target="$(redact "$BACKUP_PG_URL")"
    confirm "the database $target"
    blog "restoring $(basename "$file") into $target"
    pg_restore --clean --if-exists --no-owner --no-acl --single-transaction --exit-on-error \
      --no-password -d "$BACKUP_PG_URL" "$file" || bdie "pg_restore failed; the database is unchanged"
  else
    local cid
    cid="$(service_container "$BACKUP_PG_SERVICE")" ||
      bdie "docker is not available; give --url to restore into a database directly"
    [ -n "$cid" ] || bdie "no running container of $BACKUP_PG_SERVICE on this node (give --url?)"
    confirm "the database of $BACKUP_PG_SERVICE"
    blog "restoring $(basename "$file") into $BACKUP_PG_SERVICE (container ${cid:0:12})"
    # shellcheck disable=SC2016 # expanded inside the container
    docker exec -i "$cid" sh -c 'exec pg_restore --clean --if-exists --no-owner --no-acl \
      --single-transaction --exit-on-error -U "${POSTGRES_USER:-postgres}" \
      -d "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"' <"$file" ||
      bdie "pg_restore failed; the database is unchanged"
  fi
  blog "restored $(basename "$file")"
}

restore_grafana() {
  local data cid="" owner
  WORK="$(mktemp -d)"
  tar -xzf "$file" -C "$WORK" grafana.db || bdie "cannot extract grafana.db from $file"
  python3 - "$WORK/grafana.db" <<'PY' || bdie "refusing $file: grafana.db fails SQLite's integrity check"
import sqlite3, sys
sys.exit(0 if sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0] == "ok" else 1)
PY
  data="$BACKUP_GRAFANA_DATA"
  if [ -z "$data" ]; then
    cid="$(service_container "$BACKUP_GRAFANA_SERVICE")" ||
      bdie "docker is not available; give --grafana-data DIR"
    [ -n "$cid" ] || bdie "no running container of $BACKUP_GRAFANA_SERVICE (give --grafana-data?)"
    data="$(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/var/lib/grafana"}}{{.Source}}{{end}}{{end}}' "$cid")"
    [ -n "$data" ] || bdie "$BACKUP_GRAFANA_SERVICE has no volume at /var/lib/grafana"
  fi
  [ -d "$data" ] || bdie "no such directory: $data"
  confirm "Grafana's database in $data"
  if [ -n "$cid" ]; then
    REPLICAS="$(docker service inspect -f '{{.Spec.Mode.Replicated.Replicas}}' "$BACKUP_GRAFANA_SERVICE")"
    blog "scaling $BACKUP_GRAFANA_SERVICE to 0 while its database is replaced"
    docker service scale --detach=false "$BACKUP_GRAFANA_SERVICE=0" >/dev/null
  fi
  owner="$(stat -c %u:%g "$data")"
  install -m 0640 -o "${owner%:*}" -g "${owner#*:}" "$WORK/grafana.db" "$data/grafana.db.restore"
  rm -f "$data/grafana.db-wal" "$data/grafana.db-shm"
  mv "$data/grafana.db.restore" "$data/grafana.db"
  blog "restored Grafana's database into $data"
}

WORK=""
REPLICAS=""
cleanup() {
  [ -z "$WORK" ] || rm -rf "$WORK"
  if [ -n "$REPLICAS" ]; then
    blog "scaling $BACKUP_GRAFANA_SERVICE back to $REPLICAS"
    docker service scale --detach=false "$BACKUP_GRAFANA_SERVICE=$REPLICAS" >/dev/null
  fi
}
trap cleanup EXIT

verify_backup "$file"
case "$cmd" in
verify) blog "$file is intact ($(kind_of "$file"), sha256 matches, content readable)" ;;
postgres)
  [ "$(kind_of "$file")" = postgres ] || bdie "$file is not a PostgreSQL backup"
  restore_postgres
  ;;
grafana)
  [ "$(kind_of "$file")" = grafana ] || bdie "$file is not a Grafana backup"
  restore_grafana
  ;;
*) usage ;;
esac
