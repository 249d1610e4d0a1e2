#!/usr/bin/env bash
# Remove everything scripts/up.sh made: the reconcilers, the production and staging stacks with
# their volumes (the data!), secrets and configs, the probe containers, the local git remote and state, the images it
# built, and the registry, Swarm and dockerd when up.sh was the one that started them.
#
#   ./scripts/down.sh                 everything
#   ./scripts/down.sh --keep-data     keep the stack's volumes (PostgreSQL, Redis, Prometheus...)
#   ./scripts/down.sh --keep-images   keep the built images (the next up.sh starts faster)
#
# The Python base image (scripts/build-base-image.sh) is kept: the test environment shares it.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
become_root "$@"

STACK="${DRIFTLESS_STACK:-driftless}"
STATE="${DRIFTLESS_UP_STATE:-$CACHE_DIR/up}" # the same settings as up.sh
REGISTRY=127.0.0.1:5000
KEEP_DATA=0
KEEP_IMAGES=0
for arg in "$@"; do
  case "$arg" in
  --keep-data) KEEP_DATA=1 ;;
  --keep-images) KEEP_IMAGES=1 ;;
  *) die "usage: $0 [--keep-data] [--keep-images]" ;;
  esac
done

STACKS=("$STACK-staging" "$STACK")
for dir in "$STATE/staging" "$STATE"; do
  if pid_alive "$dir/reconciler.pid"; then
    log "stopping the reconciler of $dir"
    stop_pid "$dir/reconciler.pid" 120
  fi
done

if docker info >/dev/null 2>&1; then
  # the stack, the reconciler's probe containers on its networks, and (the data!) its volumes
  volumes=(--volumes)
  [ "$KEEP_DATA" = 0 ] || volumes=()
  for stack in "${STACKS[@]}"; do
    if docker stack ls --format '{{.Name}}' | grep -qx "$stack"; then log "removing the stack $stack"; fi
    python3 "$ROOT/scripts/remove_stack.py" "$stack" "${volumes[@]}" \
      --extra-label "driftless.probe=$stack" --timeout 90 || die "the stack $stack is not gone"
    [ "$KEEP_DATA" = 1 ] || log "removed the volumes of $stack"
  done
  # the SOPS secrets the reconciler made went with the stack; these are the external ones that
  # older versions of up.sh created
  "$ROOT/scripts/make-secrets.sh" remove "$STACK"
  if [ "$KEEP_IMAGES" = 0 ] && [ -s "$STATE/images.txt" ]; then
    # exactly the images up.sh built (it listed them), from the engine and from the registry
    while read -r ref; do
      docker rmi "$ref" >/dev/null 2>&1 || true
      case "$ref" in "$REGISTRY"/*) ;; *) continue ;; esac
      repo="${ref#"$REGISTRY"/}"
      digest="$(curl -fsSI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://$REGISTRY/v2/${repo%:*}/manifests/${repo##*:}" 2>/dev/null |
        tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')" || true
      [ -z "$digest" ] || curl -fsS -X DELETE "http://$REGISTRY/v2/${repo%:*}/manifests/$digest" >/dev/null 2>&1 || true
    done <"$STATE/images.txt"
    log "removed the images up.sh built"
  fi
fi

stop_pid "$STATE/registry/registry.pid" 10
if [ -e "$STATE/swarm-initialised" ] && docker info >/dev/null 2>&1; then
  if [ -z "$(docker service ls -q)" ]; then
    log "leaving the Swarm up.sh created"
    docker swarm leave --force >/dev/null
  else
    warn "other services run on this Swarm: left it as it is"
  fi
fi
if pid_alive "$STATE/dockerd.pid"; then
  log "stopping the dockerd up.sh started"
  stop_pid "$STATE/dockerd.pid" 60
fi
if [ "$KEEP_DATA" = 1 ]; then
  # secrets' values (and the age key they are encrypted for) stay with the volumes they protect
  find "$STATE" -mindepth 1 -maxdepth 1 ! -name secrets ! -name age.key ! -name secrets.sops.yaml \
    ! -name staging -exec rm -rf {} +
  [ ! -d "$STATE/staging" ] || find "$STATE/staging" -mindepth 1 -maxdepth 1 ! -name secrets \
    ! -name secrets.sops.yaml -exec rm -rf {} +
else
  rm -rf "$STATE"
fi
log "down: everything scripts/up.sh made is gone"
