#!/usr/bin/env bash
# The test environment: real servers on loopback, owned by this checkout.
#
#   scripts/testenv.sh up [pg] [redis] [docker]   start them (default: all) and write .cache/testenv/env
#   scripts/testenv.sh down                       stop what `up` started, remove test stacks
#   scripts/testenv.sh env                        print the env file (source it to use the servers)
#
# PostgreSQL and Redis run from the distribution's packages in .cache/testenv on free ports, so
# several checkouts can test side by side. The Docker engine, the single-node Swarm and the local
# registry (127.0.0.1:5000) are machine-wide: `up` starts them only when they are not running and
# `down` stops only what this checkout started. A run that died half way is cleaned up by the next.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

STATE="$CACHE_DIR/testenv"
ENV_FILE="$STATE/env"
PG_BIN="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -1)"
REGISTRY_ADDR="127.0.0.1:5000"
# stacks, services and containers that tests create start with this prefix (one per checkout)
TEST_STACK_PREFIX="dlt$(printf %s "$ROOT" | sha256sum | cut -c1-4)"

env_set() { # env_set KEY VALUE: write KEY=VALUE into the env file, replacing an older value
  touch "$ENV_FILE"
  grep -v "^export $1=" "$ENV_FILE" >"$ENV_FILE.tmp" || true
  printf 'export %s=%q\n' "$1" "$2" >>"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------- PostgreSQL
pg_up() {
  [ -n "$PG_BIN" ] || die "PostgreSQL is not installed (scripts/deps.sh installs it)"
  local data="$STATE/pg/data" port
  mkdir -p "$STATE/pg"
  chown postgres: "$STATE/pg"
  chmod 755 "$STATE" "$CACHE_DIR" 2>/dev/null || true
  if [ ! -s "$data/PG_VERSION" ]; then
    rm -rf "$data"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  port="$(free_port)"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -l "$STATE/pg/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $STATE/pg -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
  env_set TEST_PG_ADMIN_URL "postgresql://postgres@127.0.0.1:$port/postgres"
  env_set TEST_PG_PORT "$port"
  env_set TEST_PG_BIN "$PG_BIN"
  log "PostgreSQL on 127.0.0.1:$port"
}

pg_down() {
  local data="$STATE/pg/data"
  if [ -s "$data/postmaster.pid" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
  fi
}

# ---------------------------------------------------------------- Redis
redis_up() {
  command -v redis-server >/dev/null || die "redis-server is not installed (scripts/deps.sh installs it)"
  local port
  port="$(free_port)"
  mkdir -p "$STATE/redis"
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --pidfile "$STATE/redis/redis.pid" \
    --dir "$STATE/redis" --logfile "$STATE/redis/redis.log" --save '' --appendonly no >/dev/null
  wait_for 20 "Redis on 127.0.0.1:$port" redis-cli -p "$port" ping || die "Redis did not start: $STATE/redis/redis.log"
  env_set TEST_REDIS_URL "redis://127.0.0.1:$port/0"
  env_set TEST_REDIS_PORT "$port"
}

redis_down() { stop_pid "$STATE/redis/redis.pid" 10; }

# ---------------------------------------------------------------- Docker, Swarm, registry
docker_up() {
  start_dockerd "$STATE/docker"
  [ -s "$STATE/docker/up-since" ] || date -u +%s >"$STATE/docker/up-since"
  init_swarm "$STATE/docker/swarm-initialised"
  label_roles # the stack places services by node labels: on one machine, all are its
  start_registry "$REGISTRY_ADDR" "$STATE/registry"
  "$ROOT/scripts/build-base-image.sh"
  env_set TEST_REGISTRY "$REGISTRY_ADDR"
  env_set TEST_BASE_IMAGE "$(cat "$CACHE_DIR/base-image")"
  env_set TEST_STACK_PREFIX "$TEST_STACK_PREFIX"
}

remove_test_stacks() {
  docker info >/dev/null 2>&1 || return 0
  local stacks
  stacks="$(docker stack ls --format '{{.Name}}' 2>/dev/null | grep "^$TEST_STACK_PREFIX" || true)"
  if [ -n "$stacks" ]; then
    log "removing test stacks: $(echo "$stacks" | tr '\n' ' ')"
    # shellcheck disable=SC2086
    python3 "$ROOT/scripts/remove_stack.py" $stacks --timeout 60 || warn "some test stacks are not gone"
  fi
  docker service ls --format '{{.Name}}' | grep "^$TEST_STACK_PREFIX" | xargs -r docker service rm >/dev/null || true
  docker config ls --format '{{.Name}}' | grep "^$TEST_STACK_PREFIX" | xargs -r docker config rm >/dev/null 2>&1 || true
  docker ps -aq --filter "label=driftless.test=$TEST_STACK_PREFIX" | xargs -r docker rm -f >/dev/null || true
  # what a test left behind: finished job containers, networks a container still held when its
  # stack went, this checkout's test images, and our own images that later builds untagged
  docker ps -aq --filter "name=^$TEST_STACK_PREFIX" | xargs -r docker rm -f >/dev/null || true
  docker network ls --format '{{.Name}}' | grep "^$TEST_STACK_PREFIX" | xargs -r docker network rm >/dev/null 2>&1 || true
  docker images --format '{{.Repository}}:{{.Tag}}' | grep "/${TEST_STACK_PREFIX}[^/]*/" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  # anonymous volumes (an image's VOLUME) that tasks created since `up` and nobody uses now
  local since vol created
  since="$(cat "$STATE/docker/up-since" 2>/dev/null || echo 0)"
  for vol in $(docker volume ls -q --filter dangling=true | grep -E '^[0-9a-f]{64}$' || true); do
    created="$(date -u -d "$(docker volume inspect -f '{{.CreatedAt}}' "$vol")" +%s 2>/dev/null || echo 0)"
    if [ "$created" -ge "$since" ]; then docker volume rm "$vol" >/dev/null 2>&1 || true; fi
  done
  rm -f "$STATE/docker/up-since"
  local title
  for title in driftless-api driftless-reconciler; do
    docker image prune -f --filter "label=org.opencontainers.image.title=$title" >/dev/null 2>&1 || true
  done
}

docker_down() {
  remove_test_stacks
  stop_pid "$STATE/registry/registry.pid" 10
  if pid_alive "$STATE/docker/dockerd.pid"; then
    log "stopping the dockerd this checkout started"
    stop_pid "$STATE/docker/dockerd.pid" 60
  fi
  rm -f "$STATE/docker/dockerd.pid"
}

# ---------------------------------------------------------------- main
cmd="${1:-}"
shift || true
case "$cmd" in
up)
  need_root
  mkdir -p "$STATE"
  components=("$@")
  [ "${#components[@]}" -gt 0 ] || components=(pg redis docker)
  # a run that died half way left servers behind: each is stopped before it starts again
  for c in "${components[@]}"; do
    case "$c" in
    pg) pg_down && pg_up ;;
    redis) redis_down && redis_up ;;
    docker) docker_up ;;
    *) die "unknown component: $c (pg, redis, docker)" ;;
    esac
  done
  log "environment written to $ENV_FILE"
  ;;
down)
  pg_down
  redis_down
  docker_down
  rm -f "$ENV_FILE"
  ;;
env) cat "$ENV_FILE" ;;
*) die "usage: $0 up [pg] [redis] [docker] | down | env" ;;
esac
