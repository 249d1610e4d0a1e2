# shellcheck shell=bash
# Shared by scripts/backup.sh and scripts/restore.sh. Source it; do not run it.
#
# Settings come from an env file (default /etc/driftless/backup.env, or $BACKUP_CONFIG); BACKUP_*
# variables already in the environment win over the file, and command-line flags win over both.

BACKUP_CONFIG="${BACKUP_CONFIG:-/etc/driftless/backup.env}"
if [ -r "$BACKUP_CONFIG" ]; then
  _backup_env="$(for _v in $(compgen -v BACKUP_); do declare -p "$_v"; done)"
  # shellcheck source=/dev/null
  . "$BACKUP_CONFIG"
  eval "$_backup_env"
  unset _backup_env _v
fi

BACKUP_DIR="${BACKUP_DIR:-/var/backups/driftless}"
BACKUP_STACK="${BACKUP_STACK:-driftless}"
BACKUP_PG_SERVICE="${BACKUP_PG_SERVICE:-${BACKUP_STACK}_postgres}"
BACKUP_GRAFANA_SERVICE="${BACKUP_GRAFANA_SERVICE:-${BACKUP_STACK}_grafana}"
BACKUP_PG_URL="${BACKUP_PG_URL:-}"
BACKUP_GRAFANA_DATA="${BACKUP_GRAFANA_DATA:-}"
BACKUP_GRAFANA_PROVISIONING="${BACKUP_GRAFANA_PROVISIONING:-}"
BACKUP_KEEP_DAILY="${BACKUP_KEEP_DAILY:-7}"
BACKUP_KEEP_WEEKLY="${BACKUP_KEEP_WEEKLY:-4}"
BACKUP_KEEP_MONTHLY="${BACKUP_KEEP_MONTHLY:-6}"
# S3-compatible upload (AWS S3, MinIO, ...): on when BACKUP_S3_BUCKET is set
BACKUP_S3_BUCKET="${BACKUP_S3_BUCKET:-}"
BACKUP_S3_PREFIX="${BACKUP_S3_PREFIX:-driftless}"
BACKUP_S3_ENDPOINT="${BACKUP_S3_ENDPOINT:-}"
BACKUP_S3_REGION="${BACKUP_S3_REGION:-us-east-1}"
BACKUP_S3_PROVIDER="${BACKUP_S3_PROVIDER:-Other}"

# usage: the calling script's header comment (from line 2 to `set -euo`) as its help; exit 2.
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

blog() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
bdie() {
  blog "error: $*"
  exit 1
}

# read_secret NAME: the value of $NAME, or the content of the file named by ${NAME}_FILE.
read_secret() {
  local name="$1" file_var="${1}_FILE"
  if [ -n "${!name:-}" ]; then
    printf '%s' "${!name}"
  elif [ -n "${!file_var:-}" ]; then
    [ -r "${!file_var}" ] || bdie "$file_var points to ${!file_var}, which cannot be read"
    tr -d '\n' <"${!file_var}"
  fi
}

# redact URL: the URL with its password replaced, for messages.
redact() { printf '%s' "$1" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#'; }

# service_container SERVICE: id of a running container of the Swarm service on this node.
service_container() {
  command -v docker >/dev/null || return 1
  docker ps -q --filter "label=com.docker.swarm.service.name=$1" --filter status=running 2>/dev/null |
    head -1
}

# verify_checksum FILE: the FILE.sha256 next to FILE exists and matches.
verify_checksum() {
  local file="$1" sum="$1.sha256" expected actual
  [ -f "$file" ] || bdie "no such backup: $file"
  [ -f "$sum" ] || bdie "refusing $file: its checksum file $sum is missing"
  expected="$(awk '{print $1; exit}' "$sum")"
  actual="$(sha256sum "$file" | awk '{print $1}')"
  [ "$expected" = "$actual" ] ||
    bdie "refusing $file: checksum mismatch (expected $expected, got $actual): the file is corrupted or was changed"
}

# kind_of FILE: postgres or grafana, from the backup's name.
kind_of() {
  case "$(basename "$1")" in
  *-postgres-*.dump) echo postgres ;;
  *-grafana-*.tar.gz) echo grafana ;;
  *) bdie "not a backup file made by backup.sh: $1" ;;
  esac
}

# verify_backup FILE: checksum, then a structural check by kind. Exits non-zero when bad.
verify_backup() {
  local file="$1" kind
  kind="$(kind_of "$file")"
  verify_checksum "$file"
  case "$kind" in
  postgres)
    pg_restore --list "$file" >/dev/null 2>&1 ||
      bdie "refusing $file: pg_restore cannot read it (not a complete custom-format dump)"
    ;;
  grafana)
    tar -tzf "$file" grafana.db >/dev/null 2>&1 ||
      bdie "refusing $file: not a Grafana backup archive (no grafana.db)"
    ;;
  esac
}
