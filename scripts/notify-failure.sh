#!/usr/bin/env bash
# Report a failed systemd unit to chat. Run by driftless-notify-failure@<unit>.service, which the
# backup and prune units name in OnFailure=.
#
#   notify-failure.sh UNIT
#
# NOTIFY_WEBHOOK_URL (from the environment, or from the env file $NOTIFY_CONFIG, by default the
# unit's credential notify.env or /etc/driftless/notify.env) is a Slack or Discord incoming
# webhook; the message carries the host, the unit and the last lines of its journal. Without a
# URL it only logs. The URL is a secret and is never printed.
set -euo pipefail

unit="${1:?usage: notify-failure.sh UNIT}"
config="${NOTIFY_CONFIG:-${CREDENTIALS_DIRECTORY:+$CREDENTIALS_DIRECTORY/notify.env}}"
config="${config:-/etc/driftless/notify.env}"
if [ -z "${NOTIFY_WEBHOOK_URL:-}" ] && [ -r "$config" ]; then
  NOTIFY_WEBHOOK_URL="$(sed -n 's/^NOTIFY_WEBHOOK_URL=//p' "$config" | tail -1 | tr -d "\"'")"
fi
if [ -z "${NOTIFY_WEBHOOK_URL:-}" ]; then
  echo "notify-failure: $unit failed; no NOTIFY_WEBHOOK_URL configured, nothing sent" >&2
  exit 0
fi

logs="$(journalctl -u "$unit" -n "${NOTIFY_LOG_LINES:-15}" --no-pager -o cat 2>/dev/null || true)"
host="$(hostname -f 2>/dev/null || hostname)"
export unit logs host NOTIFY_WEBHOOK_URL
python3 - <<'PY'
import json, os, sys, urllib.request

unit, host, logs = os.environ["unit"], os.environ["host"], os.environ["logs"]
text = f":rotating_light: `{unit}` failed on `{host}`"
if logs:
    text += "\n```\n" + logs[-1500:] + "\n```"
# Slack reads "text", Discord reads "content"; each ignores the other's field
body = json.dumps({"text": text, "content": text[:2000]}).encode()
request = urllib.request.Request(
    os.environ["NOTIFY_WEBHOOK_URL"], data=body, headers={"Content-Type": "application/json"}
)
try:
    with urllib.request.urlopen(request, timeout=15) as response:
        print(f"notify-failure: reported {unit} (HTTP {response.status})", file=sys.stderr)
except Exception as exc:  # the URL holds a token: report the kind of error only
    print(f"notify-failure: could not report {unit}: {type(exc).__name__}", file=sys.stderr)
    sys.exit(1)
PY
