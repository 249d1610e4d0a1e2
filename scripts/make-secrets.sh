#!/usr/bin/env bash
# Create the Swarm secrets the stack uses (desired-state/production/stack.yml), without ever printing
# a value.
#
#   scripts/make-secrets.sh create [PREFIX] [DIR]    create every missing secret PREFIX_<name>
#   scripts/make-secrets.sh remove [PREFIX]          remove them (stack removed first)
#   scripts/make-secrets.sh names                    list the secret names the stack needs
#
# PREFIX defaults to `driftless` (render variable DRIFTLESS_SECRETS_PREFIX in the stack). DIR
# (default /etc/driftless/secrets, mode 0700) holds one file per secret: a file that exists is used
# as is (put your Slack/Discord webhook URLs, SMTP password and git token there before the first
# run), a missing one is generated (random passwords, the URLs and Redis ACL derived from them, a
# self-signed fallback TLS certificate, an htpasswd for the monitoring UIs). Idempotent: existing
# secrets are never touched; Swarm secrets are immutable, so to rotate one, create it under a new
# name and point the stack at it (runbooks/).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

NAMES=(postgres_password database_url redis_password redis_acl redis_url redis_exporter_passwords
  grafana_admin_password grafana_secret_key grafana_smtp_password monitoring_password monitoring_htpasswd tls_fallback_cert tls_fallback_key
  alertmanager_slack_webhook_url alertmanager_discord_webhook_url alertmanager_smtp_password
  reconciler_git_token reconciler_webhook_secret reconciler_api_token)
# monitoring_password is only the plain form of monitoring_htpasswd, for the operator (not a secret
# the stack mounts).
SWARM_NAMES=("${NAMES[@]/monitoring_password/}")

# values are written without a trailing newline: every consumer reads the file as is
random_token() { python3 -c 'import secrets, sys; sys.stdout.write(secrets.token_hex(24))'; }

# gen NAME: write DIR/NAME when missing.
gen() {
  local name="$1" f="$DIR/$1"
  [ -s "$f" ] && return 0
  case "$name" in
  postgres_password | redis_password | grafana_admin_password | grafana_secret_key | monitoring_password | \
    reconciler_webhook_secret | reconciler_api_token)
    random_token >"$f"
    ;;
  database_url)
    gen postgres_password
    printf 'postgresql://driftless:%s@postgres:5432/driftless' "$(cat "$DIR/postgres_password")" >"$f"
    ;;
  redis_acl)
    gen redis_password
    # only the SHA-256 of the password is stored in the ACL file Redis reads
    printf 'user default on #%s ~* &* +@all\n' "$(sha256sum <"$DIR/redis_password" | cut -d' ' -f1)" >"$f"
    ;;
  redis_url)
    gen redis_password
    printf 'redis://:%s@redis:6379/0' "$(cat "$DIR/redis_password")" >"$f"
    ;;
  redis_exporter_passwords)
    gen redis_password
    printf '{"redis://redis:6379": "%s"}\n' "$(cat "$DIR/redis_password")" >"$f"
    ;;
  monitoring_htpasswd)
    gen monitoring_password
    printf 'admin:%s\n' "$(openssl passwd -apr1 -in "$DIR/monitoring_password")" >"$f"
    ;;
  tls_fallback_cert | tls_fallback_key)
    local host="${DRIFTLESS_PUBLIC_HOST:-localhost}"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$host" \
      -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1" \
      -keyout "$DIR/tls_fallback_key" -out "$DIR/tls_fallback_cert" >/dev/null 2>&1
    ;;
  alertmanager_slack_webhook_url | alertmanager_discord_webhook_url)
    # not configured: a local address that refuses at once (Alertmanager reports the failure)
    printf '%s' http://127.0.0.1:9/unconfigured >"$f"
    ;;
  alertmanager_smtp_password | grafana_smtp_password | reconciler_git_token)
    printf '%s' unconfigured >"$f"
    ;;
  *) die "no generator for secret $name" ;;
  esac
  chmod 0600 "$DIR"/*
}

create() {
  umask 077
  mkdir -p "$DIR"
  chmod 0700 "$DIR"
  local name created=0
  for name in "${NAMES[@]}"; do gen "$name"; done
  for name in "${SWARM_NAMES[@]}"; do
    [ -n "$name" ] || continue
    if ! docker secret inspect "${PREFIX}_$name" >/dev/null 2>&1; then
      docker secret create --label "driftless.secrets=$PREFIX" "${PREFIX}_$name" "$DIR/$name" >/dev/null
      created=$((created + 1))
    fi
  done
  log "secrets ${PREFIX}_*: $created created, the others already existed (values in $DIR)"
}

remove() {
  local ids
  ids="$(docker secret ls -q --filter "label=driftless.secrets=$PREFIX")"
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    docker secret rm $ids >/dev/null
  fi
}

PREFIX="${2:-driftless}"
DIR="${3:-${DRIFTLESS_SECRETS_DIR:-/etc/driftless/secrets}}"
case "${1:-}" in
create) create ;;
remove) remove ;;
names) printf '%s\n' "${SWARM_NAMES[@]}" | grep . ;;
*) die "usage: $0 create [PREFIX] [DIR] | remove [PREFIX] | names" ;;
esac
