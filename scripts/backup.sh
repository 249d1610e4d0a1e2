#!/usr/bin/env bash
# Back up the platform's state: PostgreSQL (pg_dump, custom format, compressed) and Grafana (its
# SQLite database and provisioning). Every backup gets a .sha256 next to it, is checked before it
# is kept, is rotated (daily/weekly/monthly) and, when configured, is uploaded to S3-compatible
# storage (AWS S3, MinIO) with rclone. The systemd timer driftless-backup.timer runs `all` daily.
#
#   backup.sh postgres [--url URL] [--label NAME]   dump the database
#   backup.sh grafana [--grafana-data DIR]          back up Grafana
#   backup.sh all                                   both, then rotate (what the timer runs)
#   backup.sh prune                                 apply the retention policy only
#   backup.sh list                                  list the backups on this machine
#
# Options (each also an environment variable, or a line in /etc/driftless/backup.env):
#   --dir DIR                 BACKUP_DIR                where backups go (/var/backups/driftless)
#   --url URL                 BACKUP_PG_URL             dump this database instead of the running
#                                                       PostgreSQL service (BACKUP_PG_SERVICE,
#                                                       default driftless_postgres)
#   --grafana-data DIR        BACKUP_GRAFANA_DATA       Grafana's data directory instead of the
#                                                       running service's volume (driftless_grafana)
#   --grafana-provisioning D  BACKUP_GRAFANA_PROVISIONING  provisioning directory to include
#   --label NAME              a kept-apart backup (e.g. before-upgrade): never rotated away
#   --no-upload               skip the S3 upload even when it is configured
#   retention: BACKUP_KEEP_DAILY=7 BACKUP_KEEP_WEEKLY=4 BACKUP_KEEP_MONTHLY=6
#   upload: BACKUP_S3_BUCKET, BACKUP_S3_PREFIX, BACKUP_S3_ENDPOINT, BACKUP_S3_REGION,
#           BACKUP_S3_PROVIDER (AWS, Minio, Other), BACKUP_S3_ACCESS_KEY_ID[_FILE],
#           BACKUP_S3_SECRET_ACCESS_KEY[_FILE]
#   BACKUP_TEXTFILE_DIR: write driftless_backup_* metrics there for node-exporter's textfile collector
#                        (driftless-backup.service: /var/lib/prometheus/node-exporter, which the
#                        stack's node-exporter reads): per kind, the last run's time and outcome
#                        and the last good backup's time and size
#
# Exit status: 0 done; 1 backup failed (nothing kept); 3 backup kept but the upload failed.
set -euo pipefail
# shellcheck source=scripts/lib/backup-common.sh
. "$(dirname "$(readlink -f "$0")")/lib/backup-common.sh"

LABEL=""
UPLOAD=1
cmd="${1:-}"
[ -n "$cmd" ] || usage
shift
while [ "$#" -gt 0 ]; do
  case "$1" in
  --dir) BACKUP_DIR="$2" && shift ;;
  --url) BACKUP_PG_URL="$2" && shift ;;
  --grafana-data) BACKUP_GRAFANA_DATA="$2" && shift ;;
  --grafana-provisioning) BACKUP_GRAFANA_PROVISIONING="$2" && shift ;;
  --label) LABEL="$2" && shift ;;
  --no-upload) UPLOAD=0 ;;
  -h | --help) usage ;;
  *) bdie "unknown option: $1 (see --help)" ;;
  esac
  shift
done
if [ -n "$LABEL" ] && ! [[ "$LABEL" =~ ^[a-z0-9][a-z0-9.-]{0,40}$ ]]; then
  bdie "--label: lower-case letters, digits, '.', '-' (got '$LABEL')"
fi
for n in BACKUP_KEEP_DAILY BACKUP_KEEP_WEEKLY BACKUP_KEEP_MONTHLY; do
  [[ "${!n}" =~ ^[0-9]+$ ]] || bdie "$n must be a whole number (got '${!n}')"
done
[ "$BACKUP_KEEP_DAILY" -ge 1 ] || bdie "BACKUP_KEEP_DAILY must be at least 1"

umask 077
CLEANUP=()
RUN_KIND="" # postgres or grafana: this process backs up that kind, and records how it went
cleanup() {
  local rc=$?
  [ "${#CLEANUP[@]}" -eq 0 ] || rm -rf "${CLEANUP[@]}"
  [ -z "$RUN_KIND" ] || record_run "$RUN_KIND" "$rc" || blog "warning: could not write the metrics"
  exit "$rc"
}
trap cleanup EXIT
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"

# backup_name KIND EXT: the file name of a new backup.
backup_name() { printf 'driftless-%s-%s%s.%s' "$1" "$STAMP" "${LABEL:+-$LABEL}" "$2"; }

# keep FILE: checksum FILE.partial, then move both into place (so no half-written backup ever
# carries a checksum).
keep() {
  local final="$1" dir name
  dir="$(dirname "$final")"
  name="$(basename "$final")"
  (cd "$dir" && sha256sum "$name.partial" | sed "s/\.partial\$//" >"$name.sha256.partial")
  mv "$final.partial" "$final"
  mv "$final.sha256.partial" "$final.sha256"
  blog "kept $final ($(du -h "$final" | cut -f1), sha256 $(cut -c1-12 "$final.sha256")…)"
}

# ---------------------------------------------------------------- PostgreSQL
backup_postgres() {
  local dir="$BACKUP_DIR/postgres" out
  mkdir -p "$dir"
  out="$dir/$(backup_name postgres dump)"
  CLEANUP+=("$out.partial")
  if [ -n "$BACKUP_PG_URL" ]; then
    command -v pg_dump >/dev/null || bdie "pg_dump is not installed (postgresql-client)"
    blog "dumping $(redact "$BACKUP_PG_URL")"
    pg_dump --format=custom --compress=6 --no-password --file="$out.partial" "$BACKUP_PG_URL" ||
      bdie "pg_dump failed for $(redact "$BACKUP_PG_URL")"
  else
    local cid
    cid="$(service_container "$BACKUP_PG_SERVICE")" ||
      bdie "docker is not available; give --url to dump a database directly"
    [ -n "$cid" ] || bdie "no running container of $BACKUP_PG_SERVICE on this node (give --url?)"
    blog "dumping the database of $BACKUP_PG_SERVICE (container ${cid:0:12})"
    # pg_dump inside the container: same version as the server, local socket, the image's own
    # POSTGRES_USER / POSTGRES_DB
    # shellcheck disable=SC2016 # expanded inside the container
    docker exec "$cid" sh -c 'exec pg_dump --format=custom --compress=6 \
      -U "${POSTGRES_USER:-postgres}" "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"' \
      >"$out.partial" || bdie "pg_dump in $BACKUP_PG_SERVICE failed"
  fi
  pg_restore --list "$out.partial" >/dev/null 2>&1 || bdie "the dump is not readable by pg_restore"
  keep "$out"
  NEW_FILES+=("$out")
  GOOD_FILE="$out"
}

# ---------------------------------------------------------------- Grafana
backup_grafana() {
  local dir="$BACKUP_DIR/grafana" out work data cid=""
  mkdir -p "$dir"
  out="$dir/$(backup_name grafana tar.gz)"
  work="$(mktemp -d)"
  CLEANUP+=("$work" "$out.partial")
  data="$BACKUP_GRAFANA_DATA"
  if [ -z "$data" ]; then
    cid="$(service_container "$BACKUP_GRAFANA_SERVICE")" ||
      bdie "docker is not available; give --grafana-data DIR"
    [ -n "$cid" ] || bdie "no running container of $BACKUP_GRAFANA_SERVICE on this node (give --grafana-data?)"
    data="$(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/var/lib/grafana"}}{{.Source}}{{end}}{{end}}' "$cid")"
    [ -n "$data" ] || bdie "$BACKUP_GRAFANA_SERVICE has no volume at /var/lib/grafana"
  fi
  [ -f "$data/grafana.db" ] || bdie "no grafana.db in $data"
  blog "backing up Grafana's database from $data"
  # SQLite's online backup API: a consistent copy even while Grafana writes
  python3 - "$data/grafana.db" "$work/grafana.db" <<'PY' || bdie "could not copy grafana.db"
import sqlite3, sys
src, dst = sqlite3.connect(sys.argv[1], timeout=30), sqlite3.connect(sys.argv[2])
with dst:
    src.backup(dst)
result = dst.execute("PRAGMA integrity_check").fetchone()[0]
sys.exit(0 if result == "ok" else f"integrity check: {result}")
PY
  if [ -n "$BACKUP_GRAFANA_PROVISIONING" ]; then
    [ -d "$BACKUP_GRAFANA_PROVISIONING" ] || bdie "no such directory: $BACKUP_GRAFANA_PROVISIONING"
    cp -a "$BACKUP_GRAFANA_PROVISIONING" "$work/provisioning"
  elif [ -n "$cid" ]; then
    docker cp "$cid:/etc/grafana/provisioning" - 2>/dev/null | tar -x -C "$work" ||
      blog "warning: could not copy /etc/grafana/provisioning out of the Grafana container"
  fi
  (cd "$work" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | sort | tar -czf "$out.partial" -T -) ||
    bdie "could not write $out"
  keep "$out"
  NEW_FILES+=("$out")
  GOOD_FILE="$out"
}

# ---------------------------------------------------------------- rotation
# The policy of restic's `forget --keep-daily/--keep-weekly/--keep-monthly`: walking from the
# newest backup back, keep the newest backup of each of the last N days, N ISO weeks and N months
# that have one. Labelled backups (--label) are never removed.
prune_kind() {
  local kind="$1" ext="$2" dir="$BACKUP_DIR/$1"
  [ -d "$dir" ] || return 0
  local files=() f
  mapfile -t files < <(find "$dir" -maxdepth 1 -type f -regextype posix-extended \
    -regex ".*/driftless-$kind-[0-9]{8}T[0-9]{6}Z\.$ext" -printf '%f\n' | sort -r)
  local last_d="" last_w="" last_m="" nd=0 nw=0 nm=0 kept=0 removed=0
  for f in "${files[@]}"; do
    local ts="${f#driftless-"$kind"-}" keepit=0 day week month
    day="${ts:0:8}"
    month="${ts:0:6}"
    week="$(date -u -d "${day:0:4}-${day:4:2}-${day:6:2}" +%G%V)"
    if [ "$nd" -lt "$BACKUP_KEEP_DAILY" ] && [ "$day" != "$last_d" ]; then
      keepit=1 nd=$((nd + 1)) last_d="$day"
    fi
    if [ "$nw" -lt "$BACKUP_KEEP_WEEKLY" ] && [ "$week" != "$last_w" ]; then
      keepit=1 nw=$((nw + 1)) last_w="$week"
    fi
    if [ "$nm" -lt "$BACKUP_KEEP_MONTHLY" ] && [ "$month" != "$last_m" ]; then
      keepit=1 nm=$((nm + 1)) last_m="$month"
    fi
    if [ "$keepit" -eq 1 ]; then
      kept=$((kept + 1))
    else
      rm -f "$dir/$f" "$dir/$f.sha256"
      removed=$((removed + 1))
      blog "rotated away $dir/$f"
    fi
  done
  blog "$kind: $kept kept, $removed removed (daily $BACKUP_KEEP_DAILY, weekly $BACKUP_KEEP_WEEKLY, monthly $BACKUP_KEEP_MONTHLY)"
}

prune() {
  prune_kind postgres dump
  prune_kind grafana tar.gz
}

# ---------------------------------------------------------------- upload and metrics
upload() {
  [ -n "$BACKUP_S3_BUCKET" ] && [ "$UPLOAD" -eq 1 ] || return 0
  [ "${#NEW_FILES[@]}" -gt 0 ] || return 0
  command -v rclone >/dev/null || {
    blog "error: BACKUP_S3_BUCKET is set but rclone is not installed"
    return 1
  }
  local key secret f kind
  key="$(read_secret BACKUP_S3_ACCESS_KEY_ID)"
  secret="$(read_secret BACKUP_S3_SECRET_ACCESS_KEY)"
  # an rclone remote defined only in this process's environment: no config file holds the keys
  export RCLONE_CONFIG_DLBACKUP_TYPE=s3 RCLONE_CONFIG_DLBACKUP_PROVIDER="$BACKUP_S3_PROVIDER"
  export RCLONE_CONFIG_DLBACKUP_REGION="$BACKUP_S3_REGION" RCLONE_CONFIG_DLBACKUP_ENV_AUTH=false
  export RCLONE_CONFIG_DLBACKUP_ACCESS_KEY_ID="$key" RCLONE_CONFIG_DLBACKUP_SECRET_ACCESS_KEY="$secret"
  [ -z "$BACKUP_S3_ENDPOINT" ] || export RCLONE_CONFIG_DLBACKUP_ENDPOINT="$BACKUP_S3_ENDPOINT"
  # rclone's S3 client cannot load AWS_CA_BUNDLE itself ("unsupported transport"); hand it the
  # same bundle through its own flag instead
  local tls=()
  if [ -n "${AWS_CA_BUNDLE:-}" ]; then
    tls=(--ca-cert "$AWS_CA_BUNDLE")
    unset AWS_CA_BUNDLE
  fi
  local rc=0
  for f in "${NEW_FILES[@]}"; do
    kind="$(kind_of "$f")"
    local dest="dlbackup:$BACKUP_S3_BUCKET/${BACKUP_S3_PREFIX:+$BACKUP_S3_PREFIX/}$kind"
    if rclone copy "${tls[@]}" --no-traverse --s3-no-check-bucket "$f" "$dest" &&
      rclone copy "${tls[@]}" --no-traverse --s3-no-check-bucket "$f.sha256" "$dest"; then
      blog "uploaded $(basename "$f") to s3://$BACKUP_S3_BUCKET/${BACKUP_S3_PREFIX:+$BACKUP_S3_PREFIX/}$kind/"
    else
      blog "error: upload of $f failed"
      rc=1
    fi
  done
  return "$rc"
}

# record_run KIND RC: node-exporter textfile metrics of this run of KIND (exit status RC): when it
# ended and whether it succeeded (a failed upload counts as a failure), and the time and size of
# the last good backup (this run's, or kept from the previous file when this run made none).
record_run() {
  [ -n "${BACKUP_TEXTFILE_DIR:-}" ] || return 0
  local kind="$1" rc="$2" prom="$BACKUP_TEXTFILE_DIR/driftless_backup_$1.prom" at="" size=""
  if [ -n "$GOOD_FILE" ]; then
    at="$(stat -c %Y "$GOOD_FILE")" size="$(stat -c %s "$GOOD_FILE")"
  elif [ -r "$prom" ]; then
    at="$(awk '$1 ~ /^driftless_backup_last_success_timestamp_seconds[{]/ {print $2}' "$prom")"
    size="$(awk '$1 ~ /^driftless_backup_size_bytes[{]/ {print $2}' "$prom")"
  fi
  if [ ! -d "$BACKUP_TEXTFILE_DIR" ]; then # readable by node-exporter (umask is 077 here)
    mkdir -p "$BACKUP_TEXTFILE_DIR"
    chmod 0755 "$BACKUP_TEXTFILE_DIR"
  fi
  {
    echo "# HELP driftless_backup_last_run_timestamp_seconds When the last backup run ended."
    echo "# TYPE driftless_backup_last_run_timestamp_seconds gauge"
    echo "driftless_backup_last_run_timestamp_seconds{kind=\"$kind\"} $(date +%s)"
    echo "# HELP driftless_backup_last_run_success Whether the last backup run succeeded (1) or failed (0)."
    echo "# TYPE driftless_backup_last_run_success gauge"
    echo "driftless_backup_last_run_success{kind=\"$kind\"} $([ "$rc" -eq 0 ] && echo 1 || echo 0)"
    if [ -n "$at" ]; then
      echo "# HELP driftless_backup_last_success_timestamp_seconds When the last good backup finished."
      echo "# TYPE driftless_backup_last_success_timestamp_seconds gauge"
      echo "driftless_backup_last_success_timestamp_seconds{kind=\"$kind\"} $at"
      echo "# HELP driftless_backup_size_bytes Size of the last good backup."
      echo "# TYPE driftless_backup_size_bytes gauge"
      echo "driftless_backup_size_bytes{kind=\"$kind\"} $size"
    fi
  } >"$prom.tmp"
  chmod 644 "$prom.tmp"
  mv "$prom.tmp" "$prom"
}

list() {
  local kind
  for kind in postgres grafana; do
    [ -d "$BACKUP_DIR/$kind" ] || continue
    echo "$BACKUP_DIR/$kind:"
    find "$BACKUP_DIR/$kind" -maxdepth 1 -type f ! -name '*.sha256' ! -name '*.partial' \
      -printf '  %f\t%s bytes\n' | sort
  done
}

NEW_FILES=()
GOOD_FILE=""
case "$cmd" in
postgres)
  RUN_KIND=postgres
  backup_postgres
  ;;
grafana)
  RUN_KIND=grafana
  backup_grafana
  ;;
all)
  # each kind in its own process: one failing does not stop the other, and each uploads its own
  # shellcheck disable=SC2046 # the names are identifiers
  export $(compgen -v BACKUP_)
  args=()
  [ -z "$LABEL" ] || args+=(--label "$LABEL")
  [ "$UPLOAD" -eq 1 ] || args+=(--no-upload)
  worst=0
  for kind in postgres grafana; do
    rc=0
    "$0" "$kind" "${args[@]}" || rc=$?
    [ "$rc" -le "$worst" ] || worst="$rc"
  done
  prune
  [ "$worst" -eq 0 ] || blog "error: a backup or an upload failed (see above)"
  exit "$worst"
  ;;
prune)
  prune
  exit 0
  ;;
list)
  list
  exit 0
  ;;
*) usage ;;
esac
upload || exit 3
