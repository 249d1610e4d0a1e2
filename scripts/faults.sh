#!/usr/bin/env bash
# The fault-injection suite (tests/faults/): faults that are not the revision's fault (the Docker
# engine restarted or its socket gone, the registry and the git remote down, erroring or slow,
# a force-push, the agent killed, its state directory full or its files damaged, its clock
# stepped, the stack changed by hand) injected at each phase of a pass on the real Swarm, with
# the invariants checked after every run. Prints "fault injection: N faults injected, R runs,
# V invariant violations, W reverts of revisions not at fault" (and .cache/artifacts/faults.json).
#
#   ./scripts/faults.sh                  every fault at every phase, good and bad releases
#   ./scripts/faults.sh -k git           only some (pytest's -k)
#   FAULTS=ci ./scripts/faults.sh        the bounded version ./scripts/test.sh runs (each fault once, at most 10 s)
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
become_root "$@"
export FAULTS="${FAULTS:-all}"
LINT=0 exec "$ROOT/scripts/test.sh" tests/faults "$@"
