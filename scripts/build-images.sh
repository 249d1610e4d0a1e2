#!/usr/bin/env bash
# Build the project's images and push them to the local registry.
#
#   scripts/build-images.sh stand-ins        local stand-ins for upstream images (images/local/*)
#   scripts/build-images.sh app [TAG]        Dockerfile.api and Dockerfile.reconciler as TAG
#   scripts/build-images.sh api [TAG]        only Dockerfile.api
#   scripts/build-images.sh all [TAG]        both (default)
#
# Images are tagged REGISTRY/driftless/<name>:<tag> (REGISTRY defaults to 127.0.0.1:5000; the
# stand-ins are tagged :local). TAG defaults to the version from pyproject.toml plus the short git
# revision. The Python base is the local debootstrap image unless PYTHON_IMAGE is set (for example
# to python:3.12-slim where Docker Hub is reachable). Layers are cached by the engine: a second run
# with unchanged sources only re-tags and re-pushes (seconds). Prints the references it pushed.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

REGISTRY="${REGISTRY:-127.0.0.1:5000}"
STAND_INS=(nginx postgres redis prometheus alertmanager node-exporter postgres-exporter
  redis-exporter nginx-exporter blackbox-exporter certbot docker-cli unavailable)

base_image() {
  if [ -n "${PYTHON_IMAGE:-}" ]; then
    echo "$PYTHON_IMAGE"
  else
    "$ROOT/scripts/build-base-image.sh"
    cat "$CACHE_DIR/base-image"
  fi
}

# build REF CONTEXT [docker build args...]: build quietly, show the log only when it fails.
build() {
  local ref="$1" context="$2" logf
  shift 2
  mkdir -p "$CACHE_DIR/build-logs"
  logf="$CACHE_DIR/build-logs/$(echo "$ref" | tr '/:' '__').log"
  local start=$SECONDS
  if ! DOCKER_BUILDKIT=0 docker build "$@" -t "$ref" "$context" >"$logf" 2>&1; then
    tail -40 "$logf" >&2
    die "building $ref failed (log: $logf)"
  fi
  log "built $ref ($((SECONDS - start)) s)"
}

push() {
  docker push "$1" >/dev/null || die "pushing $1 to $REGISTRY failed (is the registry running?)"
  echo "$1"
}

build_stand_ins() {
  local base name
  base="$(base_image)"
  for name in "${STAND_INS[@]}"; do
    build "$REGISTRY/driftless/$name:local" "images/local/$name" --build-arg "BASE_IMAGE=$base"
    push "$REGISTRY/driftless/$name:local"
  done
}

default_tag() {
  local version revision
  version="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)"
  revision="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  echo "$version-$revision"
}

build_args() { # build_args TAG: the build arguments both application images take
  local revision version
  revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
  version="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)"
  echo "--build-arg=PYTHON_IMAGE=$(base_image)"
  echo "--build-arg=VERSION=$version"
  echo "--build-arg=REVISION=$revision"
  echo "--build-arg=IMAGE_TAG=$1"
}

build_api() {
  local tag="${1:-$(default_tag)}" args
  mapfile -t args < <(build_args "$tag")
  build "$REGISTRY/driftless/api:$tag" . -f Dockerfile.api "${args[@]}"
  push "$REGISTRY/driftless/api:$tag"
}

build_app() {
  local tag="${1:-$(default_tag)}" base cli_image args
  base="$(base_image)"
  build_api "$tag"
  mapfile -t args < <(build_args "$tag")
  if [ -n "${DOCKER_CLI_IMAGE:-}" ]; then
    cli_image="$DOCKER_CLI_IMAGE"
  else
    cli_image="$REGISTRY/driftless/docker-cli:local"
    docker image inspect "$cli_image" >/dev/null 2>&1 ||
      build "$cli_image" images/local/docker-cli --build-arg "BASE_IMAGE=$base"
  fi
  build "$REGISTRY/driftless/reconciler:$tag" . -f Dockerfile.reconciler "${args[@]}" \
    --build-arg "DOCKER_CLI_IMAGE=$cli_image"
  push "$REGISTRY/driftless/reconciler:$tag"
}

case "${1:-all}" in
stand-ins) build_stand_ins ;;
app) build_app "${2:-}" ;;
api) build_api "${2:-}" ;;
all)
  build_stand_ins
  build_app "${2:-}"
  ;;
tag) default_tag ;;
*) die "usage: $0 [stand-ins|app [TAG]|api [TAG]|all [TAG]|tag]" ;;
esac
