#!/usr/bin/env bash
# Run every test: installs what is missing, starts real PostgreSQL, Redis, Docker Swarm and a
# local registry on loopback (and, for tests/e2e/multinode/, a five-node Swarm in network
# namespaces), runs the linters and the whole pytest suite, and cleans up.
#
#   ./scripts/test.sh                     everything (what CI runs; re-runs itself with sudo)
#   ./scripts/test.sh tests/unit -x       only these pytest arguments (linters still run)
#   LINT=0 ./scripts/test.sh ...          skip the linters
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
become_root "$@"
cd "$ROOT"

"$ROOT/scripts/deps.sh"
# shellcheck source=/dev/null
. "$VENV/bin/activate"

# The whole suite: the unit tests (no server, no Docker) run while the linters run and the test
# servers start, and the rest after them, appending to the same coverage data.
unit_pid=""
unit_log="$CACHE_DIR/unit-tests.log"
if [ "$#" -eq 0 ]; then
  mkdir -p "$CACHE_DIR"
  log "pytest tests/unit (beside the linters and the servers' start; output at the end of it)"
  python -m pytest --durations=5 --cov --cov-report= -p no:cacheprovider tests/unit \
    >"$unit_log" 2>&1 &
  unit_pid=$!
fi

if [ "${LINT:-1}" = "1" ]; then
  "$ROOT/scripts/lint.sh"
fi

# the multi-node Swarm (tests/e2e/multinode/) is made by its tests' fixture and removed after
# them; removed here too when pytest did not get that far, unless it was up before this run
multinode_was_up=0
[ ! -s "$CACHE_DIR/swarm-nodes/env" ] || multinode_was_up=1
cleanup() {
  local rc=$?
  [ -z "$unit_pid" ] || kill "$unit_pid" 2>/dev/null || true
  [ "$multinode_was_up" = 1 ] || "$ROOT/scripts/swarm-nodes.sh" down || true
  "$ROOT/scripts/testenv.sh" down || true
  exit "$rc"
}
trap cleanup EXIT INT TERM
"$ROOT/scripts/testenv.sh" up
# shellcheck source=/dev/null
. "$CACHE_DIR/testenv/env"

mkdir -p "$ROOT/.cache/artifacts"
cov_append=()
if [ -n "$unit_pid" ]; then
  unit_rc=0
  wait "$unit_pid" || unit_rc=$?
  unit_pid=""
  cat "$unit_log"
  [ "$unit_rc" = 0 ] || die "the unit tests failed (above)"
  cov_append=(--cov-append)
  set -- tests --ignore=tests/unit
fi
log "pytest $*"
# the slowest tests at the end of the output, and every test's time in the JUnit report: where
# the CI time goes
python -m pytest --durations=60 --junitxml=.cache/artifacts/junit.xml --cov "${cov_append[@]}" \
  --cov-report=term:skip-covered --cov-report=xml:.cache/artifacts/coverage.xml "$@"
