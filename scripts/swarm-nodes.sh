#!/usr/bin/env bash
# A multi-node Docker Swarm on this one machine, for the tests: N managers and M workers
# (default 3 and 2), each a Docker engine in its own network namespace, joined over a bridge.
#
#   scripts/swarm-nodes.sh up [N_MANAGERS N_WORKERS]   make it (an earlier run's leftovers are removed
#                                                      first) and write .cache/swarm-nodes/env
#   scripts/swarm-nodes.sh down                        remove all of it
#   scripts/swarm-nodes.sh env                         print the env file (source it to use the nodes)
#   scripts/swarm-nodes.sh status                      the Swarm's nodes, as the first live manager sees them
#   scripts/swarm-nodes.sh kill NODE                   a hard node death: every process of the node
#                                                      (engine, containerd, shims, containers) gets SIGKILL,
#                                                      its mounts and network namespace go, as at power-off
#   scripts/swarm-nodes.sh start NODE                  boot a killed node again: same data, it rejoins
#   scripts/swarm-nodes.sh isolate NODE                cut the node's link to the bridge (a partition)
#   scripts/swarm-nodes.sh heal NODE                   restore it
#
# Nodes dln-m1.. (managers, 10.77.0.11..) and dln-w1.. (workers, 10.77.0.21..) on the bridge dlnbr0
# (10.77.0.1/24). Engine sockets: unix:///run/dln/NODE/docker.sock. Labels: driftless.role=edge on
# the workers (where Nginx publishes its ports), driftless.db=true on the last manager (where
# PostgreSQL keeps its volume), driftless.monitoring=true on the one before it (Prometheus's).
# The local registry (127.0.0.1:5000, started here unless one answers) is 10.77.0.1:5000 from
# the nodes. Every process of a node runs in the cgroup
# dln/NODE, which is how `kill` finds them all. Nothing of the host's own engine is touched.
# Details: docs/testing.md.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

BRIDGE=dlnbr0
NET=10.77.0
BRIDGE_ADDR="$NET.1"
RUN=/run/dln
STATE="$CACHE_DIR/swarm-nodes"
ENV_FILE="$STATE/env"
NODES_FILE="$RUN/nodes" # one line per node: NAME ROLE ADDRESS DATA_DIR
REGISTRY_ADDR="127.0.0.1:5000"
NODE_REGISTRY="$BRIDGE_ADDR:5000"
STORAGE_DRIVER="${SWARM_NODES_STORAGE_DRIVER:-overlay2}"
RULE_TAG=driftless-swarm-nodes # the comment on our iptables rules
NODE_RE='^dln-[mw][0-9]+$'

# ---------------------------------------------------------------- helpers

# node_docker NODE ARGS...: the docker CLI on NODE's engine
node_docker() {
  local name="$1"
  shift
  docker -H "unix://$RUN/$name/docker.sock" "$@"
}

engine_answers() { node_docker "$1" version >/dev/null 2>&1; }

node_data() { # node_data NODE: the node's data root (another checkout's, if that one made it)
  awk -v n="$1" '$1 == n { print $4; found = 1 } END { exit !found }' "$NODES_FILE" 2>/dev/null ||
    echo "$STATE/$1/data"
}

node_field() { # node_field NODE COLUMN: ROLE (2), ADDRESS (3) or DATA_DIR (4) from the nodes file
  [ -s "$NODES_FILE" ] || die "no multi-node Swarm is up (scripts/swarm-nodes.sh up)"
  awk -v n="$1" -v c="$2" '$1 == n { print $c; found = 1 } END { exit !found }' "$NODES_FILE" ||
    die "no such node: $1 (nodes: $(awk '{ printf "%s ", $1 }' "$NODES_FILE"))"
}

# cgroup_dir NODE: the cgroup that holds every process of NODE (engine/ and ctr/ below it):
# cgroup v2's unified hierarchy, else cgroup v1's freezer
cgroup_dir() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    echo "/sys/fs/cgroup/dln/$1"
  else
    echo "/sys/fs/cgroup/freezer/dln/$1"
  fi
}

cgroup_pids() { # cgroup_pids DIR: the processes in DIR and below
  find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null || true
}

# kill_cgroup DIR: SIGKILL every process in DIR and below at once, and wait until they are gone.
# cgroup v2 has cgroup.kill; on v1 the tree is frozen first so that nothing forks meanwhile.
kill_cgroup() {
  local dir="$1" i
  [ -d "$dir" ] || return 0
  if [ -f "$dir/cgroup.kill" ]; then
    echo 1 >"$dir/cgroup.kill"
  else
    echo FROZEN >"$dir/freezer.state"
    for i in $(seq 50); do
      [ "$(cat "$dir/freezer.state")" = FROZEN ] && break
      [ "$i" -lt 50 ] || warn "the processes of $dir did not all freeze"
      sleep 0.1
    done
    cgroup_pids "$dir" | xargs -r kill -9 2>/dev/null || true
    echo THAWED >"$dir/freezer.state"
  fi
  for i in $(seq 100); do
    [ -n "$(cgroup_pids "$dir")" ] || return 0
    sleep 0.1
  done
  warn "processes left in $dir: $(cgroup_pids "$dir" | tr '\n' ' ')"
}

# remove_cgroups NODE...: the nodes' cgroups in every hierarchy (runc made the containers' ones)
remove_cgroups() {
  local name dir
  for name in "$@"; do
    for dir in /sys/fs/cgroup/dln/"$name" /sys/fs/cgroup/*/dln/"$name"; do
      [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  done
  for dir in /sys/fs/cgroup/dln /sys/fs/cgroup/*/dln; do
    [ -d "$dir" ] && rmdir "$dir" 2>/dev/null || true
  done
}

unmount_under() { # unmount_under DIR...: every mount point at or below each DIR, deepest first
  local dir mnt
  for dir in "$@"; do
    [ -n "$dir" ] || continue
    dir="$(realpath -m "$dir")"
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
      while read -r mnt; do
        umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || warn "cannot unmount $mnt"
      done
  done
}

# remove_shim_sockets NODE DATA_DIR: containerd 1.6 keeps each shim's socket in /run/containerd/s,
# named by the hash of its containerd's address and the container; a killed shim leaves it behind
remove_shim_sockets() {
  local name="$1" data="$2" dir id
  for dir in "$data"/containers/*/; do
    [ -d "$dir" ] || continue
    id="$(basename "$dir")"
    rm -f "/run/containerd/s/$(printf '%s' "$RUN/$name/containerd/containerd.sock/moby/$id" | sha256sum | cut -c1-64)"
  done
}

ipt_rule() { # ipt_rule add|del TABLE CHAIN RULE...: insert RULE once / delete every copy of it
  local action="$1" table="$2" chain="$3"
  shift 3
  if [ "$action" = add ]; then
    iptables -w -t "$table" -C "$chain" "$@" 2>/dev/null || iptables -w -t "$table" -I "$chain" "$@"
  else
    while iptables -w -t "$table" -C "$chain" "$@" 2>/dev/null; do
      iptables -w -t "$table" -D "$chain" "$@"
    done
  fi
}

# firewall add|del: traffic between the nodes passes (the host's engine sets FORWARD to DROP and
# bridged traffic goes through iptables); nothing from the nodes is forwarded off the bridge; TCP
# to the bridge address's port 5000 reaches the registry on the host's loopback.
firewall() {
  local action="$1"
  command -v iptables >/dev/null || return 0
  ipt_rule "$action" filter FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$RULE_TAG" -j ACCEPT
  ipt_rule "$action" filter FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment "$RULE_TAG" -j DROP
  ipt_rule "$action" nat PREROUTING -i "$BRIDGE" -d "$BRIDGE_ADDR" -p tcp --dport 5000 \
    -m comment --comment "$RULE_TAG" -j DNAT --to-destination "$REGISTRY_ADDR"
}

# ---------------------------------------------------------------- one node

node_net_up() { # node_net_up NODE ADDRESS: its namespace, a veth to the bridge, address and route
  local name="$1" addr="$2" host_end="dlh-${1#dln-}"
  [ ! -e "/var/run/netns/$name" ] || return 0
  ip netns add "$name"
  ip link del "$host_end" 2>/dev/null || true
  # a fixed MAC per address: a node that boots again is not hidden behind stale ARP entries
  ip link add "$host_end" type veth peer name eth0 address "$(printf '02:00:0a:4d:00:%02x' "${addr##*.}")" netns "$name"
  ip link set "$host_end" master "$BRIDGE" up
  ip -n "$name" addr add "$addr/24" dev eth0
  ip -n "$name" link set eth0 up
  ip -n "$name" link set lo up
  ip -n "$name" route add default via "$BRIDGE_ADDR"
}

node_net_down() {
  ip netns del "$1" 2>/dev/null || true
  ip link del "dlh-${1#dln-}" 2>/dev/null || true
}

# engine_start NODE: dockerd in the node's network namespace and its own UTS namespace (its
# hostname, so Swarm's node name, is NODE), with every process in the node's cgroup. No iptables
# rules: its default bridge reaches nothing off the node, and a port published on the node's
# loopback (`-p 127.0.0.1::8080`, as the agent's probe does) answers through the userland proxy
engine_start() {
  local name="$1" dir cg
  dir="$(dirname "$(node_data "$name")")"
  cg="$(cgroup_dir "$name")"
  mkdir -p "$dir/data" "$RUN/$name" "$cg/engine"
  # its own configuration, not the host engine's /etc/docker/daemon.json; and 20.10 keeps the
  # engine's ID in /etc/docker/key.json unless told otherwise: one per node
  if grep -qa 'json:"deprecated-key-path' "$(command -v dockerd)"; then
    printf '{"deprecated-key-path": "%s"}\n' "$dir/key.json" >"$dir/daemon.json"
  else
    echo '{}' >"$dir/daemon.json"
  fi
  rm -f "$RUN/$name/dockerd.pid"
  # shellcheck disable=SC2016 # $$, $1, $2 belong to the inner shell
  setsid nsenter --net="/var/run/netns/$name" unshare --uts \
    sh -c 'echo $$ >"$1/cgroup.procs" && echo "$2" >/proc/sys/kernel/hostname && shift 2 && exec "$@"' \
    sh "$cg/engine" "$name" \
    dockerd --config-file "$dir/daemon.json" \
    --data-root "$dir/data" --exec-root "$RUN/$name" --pidfile "$RUN/$name/dockerd.pid" \
    -H "unix://$RUN/$name/docker.sock" --iptables=false \
    --insecure-registry "$NODE_REGISTRY" --storage-driver "$STORAGE_DRIVER" \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/dln/$name/ctr" \
    --shutdown-timeout 5 </dev/null >>"$dir/dockerd.log" 2>&1 9>&- &
}

engine_wait() {
  wait_for 60 "engine $1" node_docker "$1" version ||
    die "the engine of $1 did not start: $(dirname "$(node_data "$1")")/dockerd.log"
}

# node_kill NODE: the node dies at once, as at power-off: SIGKILL to all its processes, then its
# mounts, runtime state (/run) and network namespace are gone; its data stays
node_kill() {
  local name="$1" data
  data="$(node_field "$name" 4)"
  kill_cgroup "$(cgroup_dir "$name")"
  rm -f "$RUN/$name/dockerd.pid"
  unmount_under "$RUN/$name" "$data"
  remove_shim_sockets "$name" "$data"
  rm -rf "${RUN:?}/$name"
  node_net_down "$name"
  remove_cgroups_ctr "$name"
}

remove_cgroups_ctr() { # the containers' cgroups of NODE in every hierarchy
  local dir
  for dir in /sys/fs/cgroup/dln/"$1"/ctr /sys/fs/cgroup/*/dln/"$1"/ctr; do
    [ -d "$dir" ] && find "$dir" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

node_start() {
  local name="$1"
  if engine_answers "$name"; then
    log "$name is running already"
    return 0
  fi
  node_kill "$name" # whatever is left of it
  ip link show "$BRIDGE" >/dev/null 2>&1 || die "the bridge $BRIDGE is gone: scripts/swarm-nodes.sh up"
  node_net_up "$name" "$(node_field "$name" 3)"
  engine_start "$name"
  engine_wait "$name"
}

node_link() { # node_link NODE up|down
  node_field "$1" 3 >/dev/null
  ip link set "dlh-${1#dln-}" "$2"
}

# ---------------------------------------------------------------- the whole Swarm

# every node that anything of an earlier run is left of: namespaces, cgroups, runtime dirs
leftover_nodes() {
  {
    ip netns list 2>/dev/null | awk '{ print $1 }'
    ls /sys/fs/cgroup/dln /sys/fs/cgroup/freezer/dln "$RUN" 2>/dev/null || true
    [ ! -s "$NODES_FILE" ] || awk '{ print $1 }' "$NODES_FILE"
  } | { grep -E "$NODE_RE" || true; } | sort -u
}

teardown() {
  local nodes name pidfile deadline data data_dirs=()
  nodes="$(leftover_nodes)"
  for name in $nodes; do data_dirs+=("$(node_data "$name")"); done
  if [ -n "$nodes" ]; then
    log "stopping the engines of $(echo "$nodes" | tr '\n' ' ')"
    for name in $nodes; do
      pidfile="$RUN/$name/dockerd.pid"
      if pid_alive "$pidfile" && grep -q dockerd "/proc/$(cat "$pidfile")/cmdline" 2>/dev/null; then
        kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
      fi
    done
    deadline=$((SECONDS + 20))
    for name in $nodes; do
      pidfile="$RUN/$name/dockerd.pid"
      while pid_alive "$pidfile" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    done
    # what did not stop in time, and every container and shim left behind
    for name in $nodes; do kill_cgroup "$(cgroup_dir "$name")"; done
  fi
  unmount_under "$RUN" "$STATE" "${data_dirs[@]}"
  for name in $nodes; do
    remove_shim_sockets "$name" "$(node_data "$name")"
    node_net_down "$name"
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  firewall del
  # shellcheck disable=SC2086
  remove_cgroups $nodes
  for data in "${data_dirs[@]}"; do
    [[ "$(basename "$(dirname "$data")")" =~ $NODE_RE ]] && rm -rf --one-file-system "$(dirname "$data")"
  done
  rm -rf --one-file-system "$RUN" "$ENV_FILE"
}

swarm_up() {
  local managers="$1" workers="$2" name addr role first first_addr mtoken wtoken i pids=()
  local nodes=()
  mkdir -p "$STATE" "$RUN"
  : >"$NODES_FILE"
  for i in $(seq "$managers"); do
    echo "dln-m$i manager $NET.$((10 + i)) $STATE/dln-m$i/data" >>"$NODES_FILE"
  done
  for i in $(seq "$workers"); do
    echo "dln-w$i worker $NET.$((20 + i)) $STATE/dln-w$i/data" >>"$NODES_FILE"
  done
  mapfile -t nodes < <(awk '{ print $1 }' "$NODES_FILE")

  start_registry "$REGISTRY_ADDR" "$STATE/registry" 9>&- # (fd 9: the lock, not for the daemon)
  log "bridge $BRIDGE ($BRIDGE_ADDR/24) and ${#nodes[@]} network namespaces"
  ip link add "$BRIDGE" type bridge
  ip addr add "$BRIDGE_ADDR/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # the registry DNAT goes to the host's loopback: allowed for packets from this bridge only
  sysctl -qw "net.ipv4.conf.$BRIDGE.route_localnet=1"
  firewall add
  for name in "${nodes[@]}"; do
    node_net_up "$name" "$(node_field "$name" 3)"
    engine_start "$name"
  done
  for name in "${nodes[@]}"; do engine_wait "$name"; done

  first="${nodes[0]}"
  first_addr="$(node_field "$first" 3)"
  log "swarm init on $first, $((managers - 1)) managers and $workers workers join"
  node_docker "$first" swarm init --advertise-addr "$first_addr" --listen-addr "$first_addr:2377" >/dev/null
  mtoken="$(node_docker "$first" swarm join-token -q manager)"
  wtoken="$(node_docker "$first" swarm join-token -q worker)"
  for name in "${nodes[@]:1}"; do
    role="$(node_field "$name" 2)"
    addr="$(node_field "$name" 3)"
    if [ "$role" = manager ]; then # one at a time: each join changes the Raft membership
      node_docker "$name" swarm join --token "$mtoken" --advertise-addr "$addr" \
        --listen-addr "$addr:2377" "$first_addr:2377" >/dev/null
    else
      node_docker "$name" swarm join --token "$wtoken" --advertise-addr "$addr" \
        --listen-addr "$addr:2377" "$first_addr:2377" >/dev/null &
      pids+=($!)
    fi
  done
  for i in "${pids[@]}"; do wait "$i" || die "a worker did not join the Swarm"; done

  wait_for 60 "Swarm of ${#nodes[@]} nodes" swarm_ready "$first" "${#nodes[@]}" ||
    die "not every node is Ready: $(node_docker "$first" node ls)"
  # by host name: a node has one once it has reported to the managers (Ready), not as soon as
  # its join returns
  for i in $(seq "$workers"); do
    node_docker "$first" node update --label-add driftless.role=edge "dln-w$i" >/dev/null
  done
  node_docker "$first" node update --label-add driftless.db=true "dln-m$managers" >/dev/null
  node_docker "$first" node update --label-add driftless.monitoring=true \
    "dln-m$((managers > 1 ? managers - 1 : 1))" >/dev/null

  for name in "${nodes[@]}"; do
    nsenter --net="/var/run/netns/$name" curl -fsS --max-time 5 "http://$NODE_REGISTRY/v2/" >/dev/null ||
      die "$name does not reach the registry at $NODE_REGISTRY"
  done
  write_env
}

swarm_ready() { # swarm_ready MANAGER COUNT: COUNT nodes Ready under their names, managers reachable
  local out
  out="$(node_docker "$1" node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}')" ||
    return 1
  [ "$(grep -c '^dln-[a-z0-9]* Ready' <<<"$out")" -eq "$2" ] && ! grep -q Unreachable <<<"$out"
}

# already_up MANAGERS WORKERS: this checkout's Swarm of that shape is up and whole
already_up() {
  [ -s "$NODES_FILE" ] && [ -s "$ENV_FILE" ] || return 1
  # shellcheck disable=SC2016 # awk's own variables
  local count='index($4, s "/") == 1 && $2 == r { n++ } END { print n + 0 }'
  [ "$(awk -v s="$STATE" -v r=manager "$count" "$NODES_FILE")" -eq "$1" ] || return 1
  [ "$(awk -v s="$STATE" -v r=worker "$count" "$NODES_FILE")" -eq "$2" ] || return 1
  local name
  while read -r name _; do engine_answers "$name" || return 1; done <"$NODES_FILE"
  swarm_ready dln-m1 $(($1 + $2))
}

write_env() {
  local managers="" workers="" names="" addresses="" name role addr data
  while read -r name role addr data; do
    names+="$name "
    addresses+="$name=$addr "
    if [ "$role" = manager ]; then
      managers+="unix://$RUN/$name/docker.sock "
    else
      workers+="unix://$RUN/$name/docker.sock "
    fi
  done <"$NODES_FILE"
  {
    printf 'export SWARM_NODES=%q\n' "${names% }"
    printf 'export SWARM_NODES_MANAGERS=%q\n' "${managers% }"
    printf 'export SWARM_NODES_WORKERS=%q\n' "${workers% }"
    printf 'export SWARM_NODES_ADDRESSES=%q\n' "${addresses% }"
    printf 'export SWARM_NODES_REGISTRY=%q\n' "$NODE_REGISTRY"
    printf 'export SWARM_NODES_HOST_REGISTRY=%q\n' "$REGISTRY_ADDR"
  } >"$ENV_FILE"
  log "multi-node Swarm up: $ENV_FILE"
}

# ---------------------------------------------------------------- main

cmd="${1:-}"
shift || true
[ "$cmd" = env ] || become_root "$cmd" "$@"
case "$cmd" in
up | down | kill | start | isolate | heal)
  for tool in ip iptables nsenter unshare setsid flock dockerd docker curl; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/deps.sh installs it)"
  done
  # one change at a time, from any checkout: the bridge, addresses and names are machine-wide
  mkdir -p "$(dirname "$RUN")"
  exec 9>"$RUN.lock"
  flock -w 300 9 || die "another scripts/swarm-nodes.sh holds $RUN.lock"
  ;;
esac
case "$cmd" in
up)
  managers="${1:-3}" workers="${2:-2}"
  [[ "$managers" =~ ^[1-9]$ && "$workers" =~ ^[0-9]$ ]] ||
    die "usage: $0 up [N_MANAGERS (1-9) N_WORKERS (0-9)]"
  if already_up "$managers" "$workers"; then
    log "the multi-node Swarm is up already ($managers managers, $workers workers)"
    write_env
    exit 0
  fi
  started=$SECONDS
  teardown
  swarm_up "$managers" "$workers"
  log "up in $((SECONDS - started)) s"
  ;;
down)
  teardown
  stop_pid "$STATE/registry/registry.pid" 10
  rm -rf "$STATE"
  log "multi-node Swarm removed"
  ;;
env) cat "$ENV_FILE" ;;
status)
  [ -s "$NODES_FILE" ] || die "no multi-node Swarm is up (scripts/swarm-nodes.sh up)"
  while read -r name role _; do
    if [ "$role" = manager ] && engine_answers "$name"; then
      node_docker "$name" node ls
      exit 0
    fi
  done <"$NODES_FILE"
  die "no manager answers"
  ;;
kill)
  [ -n "${1:-}" ] || die "usage: $0 kill NODE"
  node_kill "$1"
  log "$1 killed"
  ;;
start)
  [ -n "${1:-}" ] || die "usage: $0 start NODE"
  node_start "$1"
  ;;
isolate)
  [ -n "${1:-}" ] || die "usage: $0 isolate NODE"
  node_link "$1" down
  log "$1 isolated"
  ;;
heal)
  [ -n "${1:-}" ] || die "usage: $0 heal NODE"
  node_link "$1" up
  log "$1 healed"
  ;;
*) die "usage: $0 up [N_MANAGERS N_WORKERS] | down | env | status | kill NODE | start NODE | isolate NODE | heal NODE" ;;
esac
