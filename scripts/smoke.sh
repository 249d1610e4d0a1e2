#!/usr/bin/env bash
# Smoke test of a deployed API, run after every deployment (scripts/up.sh and the end-to-end tests
# call it; on the VM: scripts/smoke.sh https://shop.example.org).
#
#   scripts/smoke.sh [BASE_URL] [--expect-version TAG] [--cacert FILE | --insecure]
#
# Checks, in order: /health/live and /health/ready answer 200; /version answers (and reports TAG
# when given); one authenticated round trip: register a throw-away user, log in, GET /users/me
# with the token, log out, and the token is refused afterwards. Exit 0 when all pass; otherwise
# the failed step and the response are printed and the exit code is 1. Never prints the token.
set -euo pipefail

BASE="https://127.0.0.1"
EXPECT=""
TLS=()
while [ "$#" -gt 0 ]; do
  case "$1" in
  --expect-version)
    EXPECT="$2"
    shift 2
    ;;
  --cacert)
    TLS=(--cacert "$2")
    shift 2
    ;;
  --insecure)
    TLS=(--insecure)
    shift
    ;;
  -h | --help)
    sed -n '2,11p' "$0"
    exit 0
    ;;
  *)
    BASE="${1%/}"
    shift
    ;;
  esac
done

body="$(mktemp)"
trap 'rm -f "$body"' EXIT
fail() {
  printf 'smoke: FAIL %s\n' "$1" >&2
  head -c 500 "$body" >&2 || true
  echo >&2
  exit 1
}
# call METHOD PATH [JSON] [TOKEN]: prints the status code; the body goes to $body
call() {
  local args=(-sS -o "$body" -w '%{http_code}' --max-time 10 -X "$1" "${TLS[@]}"
    -H 'Accept: application/json')
  [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "$3")
  [ -n "${4:-}" ] && args+=(-H "Authorization: Bearer $4")
  curl "${args[@]}" "$BASE$2" || echo "000"
}
step() { printf 'smoke: ok   %s\n' "$1"; }

[ "$(call GET /health/live)" = 200 ] || fail "GET /health/live"
step "GET /health/live"
[ "$(call GET /health/ready)" = 200 ] || fail "GET /health/ready"
step "GET /health/ready"
[ "$(call GET /version)" = 200 ] || fail "GET /version"
version="$(jq -r '.image_tag // .version' "$body")"
if [ -n "$EXPECT" ] && ! jq -e --arg v "$EXPECT" '[.[]] | index($v)' "$body" >/dev/null; then
  fail "GET /version: expected $EXPECT"
fi
step "GET /version ($(jq -c . "$body"))"

email="smoke-$(date +%s)-$RANDOM@example.org"
password="smoke-$(openssl rand -hex 12)"
creds="$(jq -nc --arg e "$email" --arg p "$password" '{email: $e, password: $p, name: "Smoke Test"}')"
[ "$(call POST /auth/register "$creds")" = 201 ] || fail "POST /auth/register"
step "POST /auth/register"
login="$(jq -nc --arg e "$email" --arg p "$password" '{email: $e, password: $p}')"
[ "$(call POST /auth/login "$login")" = 200 ] || fail "POST /auth/login"
token="$(jq -r .access_token "$body")"
step "POST /auth/login"
[ "$(call GET /users/me "" "$token")" = 200 ] || fail "GET /users/me"
[ "$(jq -r .email "$body")" = "$email" ] || fail "GET /users/me: another user"
step "GET /users/me"
code="$(call POST /auth/logout "" "$token")"
case "$code" in 200 | 204) ;; *) fail "POST /auth/logout ($code)" ;; esac
[ "$(call GET /users/me "" "$token")" = 401 ] || fail "the token still works after logout"
step "POST /auth/logout"
echo "smoke: all checks passed against $BASE (serving $version)"
