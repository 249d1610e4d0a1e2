#!/usr/bin/env bash
# Benchmark the API as it runs in production: 3 `api serve` processes behind Nginx, with PostgreSQL
# and Redis, loaded with wrk, next to a plain Starlette hello-world measured in the same run.
#
#   sudo bench/api/run.sh [--duration SECONDS] [--connections N]
#
# Prints requests/s and p50/p95/p99 per endpoint and the ratio to the hello-world. Starts its own
# PostgreSQL, Redis, Nginx and API processes on free loopback ports and stops them at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/common.sh
. scripts/lib/common.sh
need_root
for tool in nginx wrk redis-server; do
  command -v "$tool" >/dev/null || scripts/deps.sh packages
done
[ -x "$VENV/bin/python" ] || scripts/deps.sh venv
exec "$VENV/bin/python" bench/api/run.py "$@"
