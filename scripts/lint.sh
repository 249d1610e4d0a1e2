#!/usr/bin/env bash
# Static checks: ruff (lint and format), mypy (strict on reconciler/), shellcheck, hadolint, yamllint,
# GitHub workflow linting (the workflow JSON schema and zizmor).
# Run inside the project's virtual environment (scripts/test.sh activates it).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

log "ruff check"
ruff check .
log "ruff format --check"
ruff format --check .
log "mypy"
mypy
log "shellcheck"
git ls-files -z --cached --others --exclude-standard -- '*.sh' '.ci/run' | xargs -0 -r shellcheck -x
dockerfiles="$(git ls-files --cached --others --exclude-standard -- 'Dockerfile*' '**/Dockerfile*')"
if [ -n "$dockerfiles" ]; then
  log "hadolint"
  # shellcheck disable=SC2086
  hadolint $dockerfiles
fi
if [ -d .github/workflows ]; then
  log "GitHub workflows: JSON schema (check-jsonschema) and zizmor"
  check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
  [ ! -f .github/dependabot.yml ] || check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
  zizmor --offline --quiet --config .github/zizmor.yml .github/
fi
