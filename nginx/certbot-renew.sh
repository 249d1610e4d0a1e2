#!/bin/sh
# The certbot service's loop: obtain the certificate once (HTTP-01 through nginx's webroot), then
# try to renew it twice a day; nginx picks the new files up on its next periodic reload.
#
# CERTBOT_DOMAINS: comma-separated names pointing at this VM; empty -> stay idle (nginx keeps the
# self-signed fallback). CERTBOT_EMAIL: the account address. CERTBOT_STAGING=1: use Let's Encrypt's
# staging CA (for trying the setup without hitting rate limits).
set -u
CERT_NAME="${CERT_NAME:-driftless}"
WEBROOT=/var/www/certbot
INTERVAL="${CERTBOT_INTERVAL:-43200}"

if [ -z "${CERTBOT_DOMAINS:-}" ]; then
  echo "certbot: CERTBOT_DOMAINS is empty; not requesting certificates (nginx serves its fallback)"
  while :; do sleep 3600; done
fi
staging=""
[ "${CERTBOT_STAGING:-0}" = 1 ] && staging="--staging"
while :; do
  if [ -f "/etc/letsencrypt/renewal/$CERT_NAME.conf" ]; then
    certbot renew --non-interactive --webroot -w "$WEBROOT" $staging || echo "certbot: renewal failed; retrying in ${INTERVAL}s"
  else
    certbot certonly --non-interactive --agree-tos --webroot -w "$WEBROOT" $staging \
      --cert-name "$CERT_NAME" -d "$CERTBOT_DOMAINS" --email "${CERTBOT_EMAIL:?CERTBOT_EMAIL is required}" \
      --no-eff-email --keep-until-expiring || echo "certbot: issuance failed; retrying in ${INTERVAL}s"
  fi
  sleep "$INTERVAL"
done
