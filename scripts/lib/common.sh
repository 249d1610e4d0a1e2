# shellcheck shell=bash
# Shared helpers for the scripts in scripts/. Source it; do not run it.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ROOT
CACHE_DIR="${DRIFTLESS_CACHE_DIR:-$ROOT/.cache}"
export CACHE_DIR
VENV="${DRIFTLESS_VENV:-$ROOT/.venv}"
export VENV

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
die() {
  printf '\033[1;31merror:\033[0m %s\n' "$*" >&2
  exit 1
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "run this as root (it installs packages and starts dockerd): sudo $0"
}

# become_root "$@": an entry script run by a user re-runs itself through sudo (keeping the
# environment, so its settings still apply); as root it goes on. The README's commands rely on it.
become_root() {
  [ "$(id -u)" -eq 0 ] && return 0
  command -v sudo >/dev/null || need_root
  exec sudo -E "$0" "$@"
}

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND every 0.5 s until it succeeds.
wait_for() {
  local timeout="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      return 1
    fi
    sleep 0.5
  done
  log "$what is ready"
}

# free_port: print a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# pid_alive FILE: true when FILE holds the pid of a running process.
pid_alive() {
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# stop_pid FILE [SECONDS]: TERM the process in FILE, KILL it after SECONDS, remove FILE.
stop_pid() {
  local file="$1" grace="${2:-20}"
  if pid_alive "$file"; then
    local pid
    pid="$(cat "$file")"
    kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        kill -9 "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
  fi
  rm -f "$file"
}

# start_dockerd DIR: start dockerd unless an engine answers already (log and pid file in DIR:
# dockerd.log, dockerd.pid, so that only the caller that started it stops it).
start_dockerd() {
  local dir="$1"
  mkdir -p "$dir"
  docker info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || die "dockerd is not installed (scripts/deps.sh installs it)"
  log "starting dockerd (log: $dir/dockerd.log)"
  nohup dockerd >"$dir/dockerd.log" 2>&1 &
  echo $! >"$dir/dockerd.pid"
  wait_for 60 "Docker engine" docker info || die "dockerd did not start: $dir/dockerd.log"
}

# init_swarm MARKER: make this engine a single-node Swarm manager unless it is in a Swarm
# already; touch the file MARKER when this call created the Swarm.
init_swarm() {
  [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ] || return 0
  log "initialising a single-node Swarm"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
  touch "$1"
}

# label_roles: give this engine's Swarm node each placement label of the stack
# (desired-state/base/stack.yml) that no node of the Swarm has yet: on one VM, every role is its.
label_roles() {
  local label self
  self="$(docker info --format '{{.Swarm.NodeID}}')"
  for label in driftless.db=true driftless.monitoring=true driftless.role=edge; do
    [ -z "$(docker node ls -q --filter "node.label=$label")" ] || continue
    docker node update --label-add "$label" "$self" >/dev/null
    log "labelled this node $label"
  done
}

# start_registry ADDR DIR: serve Debian's docker-registry on ADDR unless a registry answers there
# already (configuration, storage, log and pid file in DIR; the packaged configuration would
# require htpasswd auth).
start_registry() {
  local addr="$1" dir="$2"
  curl -fsS "http://$addr/v2/" >/dev/null 2>&1 && return 0
  command -v docker-registry >/dev/null || die "docker-registry is not installed (scripts/deps.sh installs it)"
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<CONFIG
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $dir/data}
  delete: {enabled: true}
http: {addr: $addr}
CONFIG
  nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  echo $! >"$dir/registry.pid"
  wait_for 20 "local registry on $addr" curl -fsS "http://$addr/v2/" ||
    die "the registry did not start: $dir/registry.log"
}

# stack_config_cli: the path of a docker client that has `docker stack config` (the host's, else
# the one scripts/deps.sh unpacked into .cache/docker-cli), or nothing.
stack_config_cli() {
  local probe cli
  probe="$(mktemp)"
  printf 'version: "3.8"\nservices: {}\n' >"$probe"
  for cli in "$(command -v docker || true)" "$CACHE_DIR/docker-cli/root/usr/bin/docker"; do
    if [ -x "$cli" ] && DOCKER_HOST=unix:///nonexistent "$cli" stack config -c "$probe" >/dev/null 2>&1; then
      echo "$cli"
      break
    fi
  done
  rm -f "$probe"
}
