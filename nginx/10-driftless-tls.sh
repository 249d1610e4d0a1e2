#!/bin/sh
# nginx entrypoint hook (/docker-entrypoint.d/): choose the certificate nginx serves, and reload
# nginx every RELOAD_INTERVAL seconds so that certificates renewed by certbot are picked up.
#
# The Let's Encrypt certificate (/etc/letsencrypt/live/$CERT_NAME, shared with the certbot service
# through the letsencrypt volume) wins when it exists; until certbot has obtained one, the
# self-signed fallback from the tls_fallback_* secrets is served, so nginx can start, answer the
# HTTP-01 challenge on port 80 and serve HTTPS from the first second.
set -eu
CERT_NAME="${CERT_NAME:-driftless}"
RELOAD_INTERVAL="${TLS_RELOAD_INTERVAL:-21600}"
live="/etc/letsencrypt/live/$CERT_NAME"
fallback_cert="${TLS_FALLBACK_CERT:-/run/secrets/tls_fallback_cert}"
fallback_key="${TLS_FALLBACK_KEY:-/run/secrets/tls_fallback_key}"

select_certificate() {
  mkdir -p /etc/nginx/tls
  if [ -s "$live/fullchain.pem" ] && [ -s "$live/privkey.pem" ]; then
    cert="$live/fullchain.pem" key="$live/privkey.pem"
  else
    cert="$fallback_cert" key="$fallback_key"
  fi
  if [ "$(readlink /etc/nginx/tls/fullchain.pem 2>/dev/null)" != "$cert" ]; then
    echo "10-driftless-tls: serving $cert"
  fi
  ln -sfn "$cert" /etc/nginx/tls/fullchain.pem
  ln -sfn "$key" /etc/nginx/tls/privkey.pem
}

select_certificate
if [ ! -s /etc/nginx/tls/fullchain.pem ]; then
  echo "10-driftless-tls: no certificate: neither $live nor $fallback_cert exists" >&2
  exit 1
fi

# Periodic reload, detached from the entrypoint (nginx becomes its parent once it execs).
(
  while sleep "$RELOAD_INTERVAL"; do
    select_certificate
    nginx -s reload 2>/dev/null || true
  done
) </dev/null >/dev/null 2>&1 &
