#!/usr/bin/env bash
# The main job: run the whole platform on this machine the way it runs in production. A single-node
# Docker Swarm and a local image registry, the images built and pushed, a local git remote holding
# this repository's desired state, and the reconciler (a host process, as the systemd unit runs
# it) deploying the stack from that remote. Ends with a smoke test and prints where everything is.
#
#   ./scripts/up.sh               bring it up (safe to run again; re-runs itself with sudo)
#   ./scripts/down.sh             remove everything up.sh made
#
# Settings (environment): DRIFTLESS_STACK (driftless), DRIFTLESS_HTTP_PORT (80),
# DRIFTLESS_HTTPS_PORT (443), DRIFTLESS_UPSTREAM_IMAGES (auto: use the pinned upstream images when
# Docker Hub answers, otherwise build local stand-ins; yes / no to force), DRIFTLESS_UP_STATE (where
# its state lives: the git remote, secrets' values and the age key that encrypts them, reconciler
# config and log; .cache/up).
#
# To deploy a change the GitOps way, commit to the local remote's clone that up.sh prints (for
# example a new image tag in images.yaml) and push: the reconciler picks it up within seconds.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
become_root "$@"
cd "$ROOT"

STACK="${DRIFTLESS_STACK:-driftless}"
HTTP_PORT="${DRIFTLESS_HTTP_PORT:-80}"
HTTPS_PORT="${DRIFTLESS_HTTPS_PORT:-443}"
UPSTREAM="${DRIFTLESS_UPSTREAM_IMAGES:-auto}"
REGISTRY=127.0.0.1:5000
STATE="${DRIFTLESS_UP_STATE:-$CACHE_DIR/up}"
REMOTE="$STATE/remote.git"
CLONE="$STATE/desired-state"
UNAVAILABLE=(grafana loki alloy cadvisor)
mkdir -p "$STATE"

# ------------------------------------------------------------------ 1. packages and the venv
"$ROOT/scripts/deps.sh" platform # what the platform needs; not the test tools

# ------------------------------------------------------------------ 2. engine, Swarm, registry
start_dockerd "$STATE"
init_swarm "$STATE/swarm-initialised" # down.sh leaves only a Swarm that up.sh created
start_registry "$REGISTRY" "$STATE/registry"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ours_running="$(docker service ls -q --filter "name=${STACK}_nginx")"
if [ -z "$ours_running" ]; then
  for p in "$HTTP_PORT" "$HTTPS_PORT"; do
    port_free "$p" || die "port $p is taken; free it or choose others: DRIFTLESS_HTTP_PORT=8080 DRIFTLESS_HTTPS_PORT=8443 $0"
  done
fi

# ------------------------------------------------------------------ 3. images
if [ "$UPSTREAM" = auto ]; then
  UPSTREAM=no
  if timeout 30 docker pull -q prom/node-exporter:v1.9.1 >/dev/null 2>&1; then UPSTREAM=yes; fi
fi
TAG="$("$ROOT/scripts/build-images.sh" tag)"
# build-images.sh prints every reference it pushed; down.sh removes exactly those
if [ "$UPSTREAM" = no ]; then
  log "no upstream registry here: building local stand-ins from Debian packages (images/local/)"
  "$ROOT/scripts/build-images.sh" stand-ins >>"$STATE/images.txt"
fi
log "building the API and reconciler images as $TAG"
"$ROOT/scripts/build-images.sh" app "$TAG" >>"$STATE/images.txt"
sort -u -o "$STATE/images.txt" "$STATE/images.txt"
API_IMAGE="$REGISTRY/driftless/api:$TAG"

# ------------------------------------------------------------------ 4. secrets
# The stack's secrets as production has them: one SOPS file, here encrypted for this machine's own
# age key (the committed desired-state/production/secrets.sops.yaml is for the VM's key, which is
# not here). The reconciler decrypts it with that key and creates the Swarm secrets itself.
DRIFTLESS_AGE_KEY_FILE="$STATE/age.key" DRIFTLESS_AGE_RECIPIENTS="" \
  "$ROOT/scripts/make-secrets.sh" sops "$STATE/secrets" "$STATE/secrets.sops.yaml"
# node-exporter mounts the backup metrics directory (scripts/bootstrap-vm.sh makes it on a VM)
mkdir -p /var/lib/prometheus/node-exporter

# ------------------------------------------------------------------ 5. the local git remote
# This repository's desired state (and the nginx/ and observability/ files it mounts), as committed
# at HEAD, with images.yaml pointing at what this machine has.
if [ ! -d "$REMOTE" ]; then
  git init -q --bare -b main "$REMOTE"
  git clone -q "file://$REMOTE" "$CLONE" 2>/dev/null
  git -C "$CLONE" config user.name "Driftless local"
  git -C "$CLONE" config user.email "local@driftless.invalid"
fi
git -C "$CLONE" pull -q --rebase origin main 2>/dev/null || true
for dir in desired-state nginx observability; do rm -rf "${CLONE:?}/$dir"; done
git archive HEAD desired-state nginx observability | tar -x -C "$CLONE"
cp "$STATE/secrets.sops.yaml" "$CLONE/desired-state/production/secrets.sops.yaml"
images_yaml="$CLONE/desired-state/production/images.yaml"
images=(--image "api=$API_IMAGE" --image "migrate=$API_IMAGE"
  --image "reconciler=$REGISTRY/driftless/reconciler:$TAG")
if [ "$UPSTREAM" = no ]; then # the local stand-ins, and a placeholder where there is none
  for name in "${UNAVAILABLE[@]}"; do images+=(--image "$name=$REGISTRY/driftless/unavailable:local"); done
  images+=(--others "$REGISTRY/driftless/{service}:local")
fi
"$VENV/bin/python" "$ROOT/scripts/bump_image.py" "$images_yaml" "${images[@]}" >/dev/null
git -C "$CLONE" add -A
if ! git -C "$CLONE" diff --cached --quiet; then
  git -C "$CLONE" commit -qm "Deploy $(git rev-parse --short HEAD) with images $TAG"
  git -C "$CLONE" push -q origin main
  log "committed the desired state to the local remote $REMOTE"
else
  log "the local remote already holds this desired state"
fi
HEAD_SHA="$(git -C "$REMOTE" rev-parse main)"

# ------------------------------------------------------------------ 6. the reconciler
GATEWAY="$(docker network inspect docker_gwbridge --format '{{(index .IPAM.Config 0).Gateway}}')"
replicas_off=""
if [ "$UPSTREAM" = no ]; then
  replicas_off="    DRIFTLESS_GRAFANA_REPLICAS: \"0\"
    DRIFTLESS_LOKI_REPLICAS: \"0\"
    DRIFTLESS_ALLOY_OS: none
    DRIFTLESS_CADVISOR_OS: none"
fi
cat >"$STATE/reconciler.yaml.new" <<EOF
# written by scripts/up.sh; the production one is /etc/reconciler/config.yaml
stack: $STACK
environment: production
state_dir: $STATE/reconciler
git:
  url: file://$REMOTE
  branch: main
  path: desired-state/production
sync:
  interval: 15s
  jitter: 2s
  retry_interval: 10s
health:
  probe_image: $API_IMAGE
analysis:
  prometheus_url: http://prometheus:9090
  network: analysis
render:
  sops_age_key_file: $STATE/age.key
  variables:
    DRIFTLESS_HTTP_PORT: "$HTTP_PORT"
    DRIFTLESS_HTTPS_PORT: "$HTTPS_PORT"
    DRIFTLESS_HOST_GATEWAY: "$GATEWAY"
$replicas_off
http:
  bind: $GATEWAY
  port: 9480
EOF
if ! cmp -s "$STATE/reconciler.yaml.new" "$STATE/reconciler.yaml" || ! pid_alive "$STATE/reconciler.pid"; then
  stop_pid "$STATE/reconciler.pid" 120
  mv "$STATE/reconciler.yaml.new" "$STATE/reconciler.yaml"
  log "starting the reconciler (log: $STATE/reconciler.log)"
  nohup "$VENV/bin/reconciler" --config "$STATE/reconciler.yaml" run >>"$STATE/reconciler.log" 2>&1 &
  echo $! >"$STATE/reconciler.pid"
else
  rm -f "$STATE/reconciler.yaml.new"
  log "the reconciler is already running with this configuration"
fi

log "waiting for the reconciler to deploy ${HEAD_SHA:0:12} (a first deploy takes a few minutes)"
deadline=$((SECONDS + 900))
while :; do
  pid_alive "$STATE/reconciler.pid" || die "the reconciler stopped: $STATE/reconciler.log"
  verdict="$("$VENV/bin/python" - "$STATE/reconciler/status.json" "$HEAD_SHA" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print("wait"); sys.exit()
applied = (s.get("last_applied") or {}).get("sha")
if applied == sys.argv[2] and s.get("phase") is None:
    print("ok")
elif (s.get("last_attempted") or {}).get("sha") == sys.argv[2] and s.get("last_result") in ("refused", "failed", "rolled_back"):
    print(f"fail {s.get('last_result')}: {s.get('last_message')}")
else:
    print(f"wait {s.get('phase') or ''} {s.get('progress') or ''}")
PY
)"
  case "$verdict" in
  ok) break ;;
  fail*) die "the reconciler did not deploy it: ${verdict#fail } (log: $STATE/reconciler.log)" ;;
  esac
  [ "$SECONDS" -lt "$deadline" ] || die "still not deployed after 15 minutes: $STATE/reconciler.log"
  sleep 3
done
log "deployed"

# ------------------------------------------------------------------ 7. smoke test and summary
"$ROOT/scripts/smoke.sh" "https://127.0.0.1:$HTTPS_PORT" --cacert "$STATE/secrets/tls_fallback_cert" \
  --expect-version "$TAG"

host_url="https://localhost"
[ "$HTTPS_PORT" = 443 ] || host_url="https://localhost:$HTTPS_PORT"
cat <<EOF

Driftless is running on a single-node Swarm (stack "$STACK").

  API                $host_url/            (e.g. $host_url/version, $host_url/openapi.json)
  TLS                self-signed fallback certificate: $STATE/secrets/tls_fallback_cert
  Reconciler status  $host_url/deploy/       (same credentials as Prometheus; directly: http://$GATEWAY:9480/)
                     log: $STATE/reconciler.log; JSON: $STATE/reconciler/status.json
  Prometheus         $host_url/prometheus/   (user admin, password in $STATE/secrets/monitoring_password)
  Alertmanager       $host_url/alertmanager/ (same credentials)
EOF
if [ "$UPSTREAM" = no ]; then
  cat <<EOF
  Grafana            not running here: no Grafana image can be pulled or built on this machine.
                     With registry access (DRIFTLESS_UPSTREAM_IMAGES=yes) it is at $host_url/grafana/

  Scaled to 0 because no image exists here: ${UNAVAILABLE[*]}.
  Built locally from Debian packages instead of the pinned upstream images: nginx, postgres, redis,
  prometheus, alertmanager, the exporters and certbot (images/local/README.md).
EOF
else
  echo "  Grafana            $host_url/grafana/ (user admin, password in $STATE/secrets/grafana_admin_password)"
fi
cat <<EOF

  Deploy a change:   cd $CLONE && \$EDITOR desired-state/production/images.yaml && git commit -am ... && git push
                     the api's first new task is its canary: watch its analyses under "Rollout"
                     on the reconciler's status page, or: reconciler --config $STATE/reconciler.yaml status
  Smoke test:        scripts/smoke.sh https://127.0.0.1:$HTTPS_PORT --cacert $STATE/secrets/tls_fallback_cert
  Remove it all:     sudo ${DRIFTLESS_STACK:+DRIFTLESS_STACK=$STACK }scripts/down.sh
EOF
