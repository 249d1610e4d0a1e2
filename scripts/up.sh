#!/usr/bin/env bash
# The main job: run the whole platform on this machine the way it runs in production. A single-node
# Docker Swarm and a local image registry, the images built and pushed, a local git remote holding
# this repository's desired state, and two environments side by side, each deployed from that
# remote by its own reconciler (a host process, as the systemd unit reconciler@<env> runs it):
# staging, where releases land first, and production. Staging's agent promotes what it verified
# to production (a branch that sets production's images to the digests staging ran). Ends with a
# smoke test of both and prints where everything is.
#
#   ./scripts/up.sh               bring it up (safe to run again; re-runs itself with sudo)
#   ./scripts/down.sh             remove everything up.sh made
#
# Settings (environment): DRIFTLESS_STACK (driftless; staging's is driftless-staging),
# DRIFTLESS_HTTP_PORT (80), DRIFTLESS_HTTPS_PORT (443), DRIFTLESS_STAGING_HTTP_PORT (8080),
# DRIFTLESS_STAGING_HTTPS_PORT (8443), DRIFTLESS_STAGING (yes; no: production only),
# DRIFTLESS_UPSTREAM_IMAGES (auto: use the pinned upstream images when
# Docker Hub answers, otherwise build local stand-ins; yes / no to force), DRIFTLESS_UP_STATE (where
# its state lives: the git remote, secrets' values and the age key that encrypts them, reconciler
# config and log; .cache/up).
#
# To deploy a change the GitOps way, commit to the local remote's clone that up.sh prints (a new
# image tag in desired-state/staging/images.yaml) and push: staging's reconciler picks it up within
# seconds, and once verified pushes the promotion branch; merge it to deploy it to production.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
become_root "$@"
cd "$ROOT"

STACK="${DRIFTLESS_STACK:-driftless}"
HTTP_PORT="${DRIFTLESS_HTTP_PORT:-80}"
HTTPS_PORT="${DRIFTLESS_HTTPS_PORT:-443}"
STAGING_HTTP_PORT="${DRIFTLESS_STAGING_HTTP_PORT:-8080}"
STAGING_HTTPS_PORT="${DRIFTLESS_STAGING_HTTPS_PORT:-8443}"
STAGING="${DRIFTLESS_STAGING:-yes}"
UPSTREAM="${DRIFTLESS_UPSTREAM_IMAGES:-auto}"
REGISTRY=127.0.0.1:5000
STATE="${DRIFTLESS_UP_STATE:-$CACHE_DIR/up}"
REMOTE="$STATE/remote.git"
CLONE="$STATE/desired-state"
UNAVAILABLE=(grafana loki alloy cadvisor)
mkdir -p "$STATE"
# Each environment: name, stack, published HTTP and HTTPS ports, the agent's port, its state
# (production's at the top of STATE, as before there was a staging).
ENVS=(production)
declare -A ENV_STACK=([production]="$STACK" [staging]="$STACK-staging")
declare -A ENV_HTTP=([production]="$HTTP_PORT" [staging]="$STAGING_HTTP_PORT")
declare -A ENV_HTTPS=([production]="$HTTPS_PORT" [staging]="$STAGING_HTTPS_PORT")
declare -A ENV_AGENT_PORT=([production]=9480 [staging]=9481)
declare -A ENV_STATE=([production]="$STATE" [staging]="$STATE/staging")
case "$STAGING" in
yes) ENVS=(staging production) ;;
no) ;;
*) die "DRIFTLESS_STAGING must be yes or no, not $STAGING" ;;
esac

# ------------------------------------------------------------------ 1. packages and the venv
"$ROOT/scripts/deps.sh" platform # what the platform needs; not the test tools
# a docker client with `docker stack config` (an environment's stack merged on the base)
DOCKER_CLI="$(stack_config_cli)"

# ------------------------------------------------------------------ 2. engine, Swarm, registry
start_dockerd "$STATE"
init_swarm "$STATE/swarm-initialised" # down.sh leaves only a Swarm that up.sh created
label_roles # the stack places services by node labels: on one machine, all are its
start_registry "$REGISTRY" "$STATE/registry"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for env in "${ENVS[@]}"; do
  if [ -z "$(docker service ls -q --filter "name=${ENV_STACK[$env]}_nginx")" ]; then
    for p in "${ENV_HTTP[$env]}" "${ENV_HTTPS[$env]}"; do
      port_free "$p" || die "port $p ($env) is taken; free it or choose others: DRIFTLESS_HTTP_PORT, DRIFTLESS_HTTPS_PORT, DRIFTLESS_STAGING_HTTP_PORT, DRIFTLESS_STAGING_HTTPS_PORT"
    done
  fi
done

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
# Each environment's secrets as production has them: one SOPS file, here encrypted for this
# machine's own age key (the committed desired-state/<env>/secrets.sops.yaml are for the VM's key,
# which is not here). The reconciler decrypts it with that key and creates the Swarm secrets.
for env in "${ENVS[@]}"; do
  mkdir -p "${ENV_STATE[$env]}"
  DRIFTLESS_AGE_KEY_FILE="$STATE/age.key" DRIFTLESS_AGE_RECIPIENTS="" \
    "$ROOT/scripts/make-secrets.sh" sops "${ENV_STATE[$env]}/secrets" "${ENV_STATE[$env]}/secrets.sops.yaml"
done
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
images=(--image "api=$API_IMAGE" --image "migrate=$API_IMAGE"
  --image "reconciler=$REGISTRY/driftless/reconciler:$TAG")
if [ "$UPSTREAM" = no ]; then # the local stand-ins, and a placeholder where there is none
  for name in "${UNAVAILABLE[@]}"; do images+=(--image "$name=$REGISTRY/driftless/unavailable:local"); done
  images+=(--others "$REGISTRY/driftless/{service}:local")
fi
for env in "${ENVS[@]}"; do
  cp "${ENV_STATE[$env]}/secrets.sops.yaml" "$CLONE/desired-state/$env/secrets.sops.yaml"
  "$VENV/bin/python" "$ROOT/scripts/bump_image.py" "$CLONE/desired-state/$env/images.yaml" \
    "${images[@]}" >/dev/null
done
git -C "$CLONE" add -A
if ! git -C "$CLONE" diff --cached --quiet; then
  git -C "$CLONE" commit -qm "Deploy $(git rev-parse --short HEAD) with images $TAG"
  git -C "$CLONE" push -q origin main
  log "committed the desired state to the local remote $REMOTE"
else
  log "the local remote already holds this desired state"
fi
HEAD_SHA="$(git -C "$REMOTE" rev-parse main)"

# ------------------------------------------------------------------ 6. the reconcilers
GATEWAY="$(docker network inspect docker_gwbridge --format '{{(index .IPAM.Config 0).Gateway}}')"
replicas_off=""
if [ "$UPSTREAM" = no ]; then
  replicas_off="    DRIFTLESS_GRAFANA_REPLICAS: \"0\"
    DRIFTLESS_LOKI_REPLICAS: \"0\"
    DRIFTLESS_ALLOY_OS: none
    DRIFTLESS_CADVISOR_OS: none"
fi
environments=" {}"
if [ "${#ENVS[@]}" -gt 1 ]; then # each agent's page links to the others
  environments=""
  for env in "${ENVS[@]}"; do
    environments+="
    $env: http://$GATEWAY:${ENV_AGENT_PORT[$env]}/"
  done
fi

# agent_config ENV: the reconciler's configuration for one environment (on a VM:
# /etc/reconciler/<env>.yaml, read by reconciler@<env>.service)
agent_config() {
  local env="$1" promote=""
  if [ "$env" = staging ] && [ "${#ENVS[@]}" -gt 1 ]; then
    # what staging verified is proposed to production: here a branch to merge (no forge API)
    promote="promote:
  path: desired-state/production
  pull_request: false"
  fi
  cat <<EOF
# written by scripts/up.sh; on a VM it is /etc/reconciler/$env.yaml
stack: ${ENV_STACK[$env]}
environment: $env
state_dir: ${ENV_STATE[$env]}/reconciler
git:
  url: file://$REMOTE
  branch: main
  path: desired-state/$env
sync:
  interval: 15s
  jitter: 2s
  retry_interval: 10s
docker:
  cli: $DOCKER_CLI
health:
  probe_image: $API_IMAGE
analysis:
  prometheus_url: http://prometheus:9090
  network: analysis
render:
  sops_age_key_file: $STATE/age.key
  variables:
    DRIFTLESS_HTTP_PORT: "${ENV_HTTP[$env]}"
    DRIFTLESS_HTTPS_PORT: "${ENV_HTTPS[$env]}"
    DRIFTLESS_HOST_GATEWAY: "$GATEWAY"
$replicas_off
http:
  bind: $GATEWAY
  port: ${ENV_AGENT_PORT[$env]}
  environments:$environments
$promote
EOF
}

for env in "${ENVS[@]}"; do
  dir="${ENV_STATE[$env]}"
  agent_config "$env" >"$dir/reconciler.yaml.new"
  if ! cmp -s "$dir/reconciler.yaml.new" "$dir/reconciler.yaml" || ! pid_alive "$dir/reconciler.pid"; then
    stop_pid "$dir/reconciler.pid" 120
    mv "$dir/reconciler.yaml.new" "$dir/reconciler.yaml"
    log "starting the $env reconciler (log: $dir/reconciler.log)"
    nohup "$VENV/bin/reconciler" --config "$dir/reconciler.yaml" run >>"$dir/reconciler.log" 2>&1 &
    echo $! >"$dir/reconciler.pid"
  else
    rm -f "$dir/reconciler.yaml.new"
    log "the $env reconciler is already running with this configuration"
  fi
done

# deployed ENV: "ok" once its agent applied HEAD_SHA and is idle, "fail ..." when it gave up on it
deployed() {
  "$VENV/bin/python" - "${ENV_STATE[$1]}/reconciler/status.json" "$HEAD_SHA" <<'PY'
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
}

log "waiting for the reconcilers (${ENVS[*]}) to deploy ${HEAD_SHA:0:12} (a first deploy takes a few minutes)"
deadline=$((SECONDS + 900))
pending=("${ENVS[@]}")
while [ "${#pending[@]}" -gt 0 ]; do
  still=()
  for env in "${pending[@]}"; do
    pid_alive "${ENV_STATE[$env]}/reconciler.pid" || die "the $env reconciler stopped: ${ENV_STATE[$env]}/reconciler.log"
    verdict="$(deployed "$env")"
    case "$verdict" in
    ok) log "$env: deployed" ;;
    fail*) die "the $env reconciler did not deploy it: ${verdict#fail } (log: ${ENV_STATE[$env]}/reconciler.log)" ;;
    *) still+=("$env") ;;
    esac
  done
  pending=("${still[@]+"${still[@]}"}")
  [ "${#pending[@]}" -gt 0 ] || break
  [ "$SECONDS" -lt "$deadline" ] || die "${pending[*]}: still not deployed after 15 minutes (see reconciler.log)"
  sleep 3
done

# ------------------------------------------------------------------ 7. smoke test and summary
for env in "${ENVS[@]}"; do
  log "smoke test of $env"
  "$ROOT/scripts/smoke.sh" "https://127.0.0.1:${ENV_HTTPS[$env]}" \
    --cacert "${ENV_STATE[$env]}/secrets/tls_fallback_cert" --expect-version "$TAG"
done

host_url="https://localhost"
[ "$HTTPS_PORT" = 443 ] || host_url="https://localhost:$HTTPS_PORT"
cat <<EOF

Driftless is running on a single-node Swarm: ${ENVS[*]} (stacks: $(for e in "${ENVS[@]}"; do printf '%s ' "${ENV_STACK[$e]}"; done)).

Production (stack "$STACK")
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
if [ "${#ENVS[@]}" -gt 1 ]; then
  staging_url="https://localhost:$STAGING_HTTPS_PORT"
  cat <<EOF

Staging (stack "${ENV_STACK[staging]}": production's base stack with 2 API replicas and smaller limits)
  API                $staging_url/
  Reconciler status  http://$GATEWAY:9481/   (the environments side by side; log: $STATE/staging/reconciler.log)
  Prometheus         $staging_url/prometheus/ (user admin, password in $STATE/staging/secrets/monitoring_password)

  Release:   cd $CLONE && \$EDITOR desired-state/staging/images.yaml && git commit -am ... && git push
             staging deploys it (the api's first new task is its canary, under "Rollout" on its page)
             and, once verified, pushes the branch driftless/promote-<sha> that sets production's
             images to the digests staging ran (its message carries staging's verification):
  Promote:   git fetch && git merge origin/driftless/promote-<sha> && git push
             (a failed release is rolled back and reverted in staging and never proposed)
EOF
else
  cat <<EOF

  Deploy a change:   cd $CLONE && \$EDITOR desired-state/production/images.yaml && git commit -am ... && git push
                     the api's first new task is its canary: watch its analyses under "Rollout"
                     on the reconciler's status page
EOF
fi
cat <<EOF
  Status (CLI):      reconciler --config $STATE/reconciler.yaml status
  Smoke test:        scripts/smoke.sh https://127.0.0.1:$HTTPS_PORT --cacert $STATE/secrets/tls_fallback_cert
  Remove it all:     sudo ${DRIFTLESS_STACK:+DRIFTLESS_STACK=$STACK }scripts/down.sh
EOF
