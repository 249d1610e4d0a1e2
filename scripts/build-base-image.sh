#!/usr/bin/env bash
# Make the Python base image that local builds use instead of python:3.12-slim when no upstream
# registry is reachable: a minimal Debian root filesystem (debootstrap) with python3, the system CA
# bundle and nothing else, imported into the local engine. Built once and cached: the image is only
# rebuilt when it is missing or when this script changes.
#
# Prints nothing on success but writes the image reference to .cache/base-image.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

SUITE="${BASE_SUITE:-bookworm}"
TAG="$(sha256sum "$0" | cut -c1-12)"
IMAGE="driftless/python-base:$SUITE-$TAG"

mkdir -p "$CACHE_DIR"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE" >"$CACHE_DIR/base-image"
  exit 0
fi

if [ -n "${BASE_IMAGE_FROM_REGISTRY:-}" ] && docker pull "$BASE_IMAGE_FROM_REGISTRY" >/dev/null 2>&1; then
  docker tag "$BASE_IMAGE_FROM_REGISTRY" "$IMAGE"
  echo "$IMAGE" >"$CACHE_DIR/base-image"
  exit 0
fi

need_root
command -v debootstrap >/dev/null || die "debootstrap is not installed (scripts/deps.sh installs it)"
log "building the local Python base image $IMAGE with debootstrap (about a minute, once)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
debootstrap --variant=minbase \
  --include=python3,python3-venv,python3-pip,ca-certificates,curl,tini \
  "$SUITE" "$rootfs" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2
  die "debootstrap failed"
}
# TLS to the package registries may be intercepted by a proxy whose CA only the host trusts.
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$rootfs/usr/local/share/ca-certificates"
if [ -d /usr/local/share/ca-certificates ]; then
  cp -a /usr/local/share/ca-certificates/. "$rootfs/usr/local/share/ca-certificates/" || true
fi
# the same apt mirror the host uses
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/"
  : >"$rootfs/etc/apt/sources.list"
fi
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
# python3 is /usr/bin/python3 here; upstream python images expose `python` as well
ln -sf python3 "$rootfs/usr/bin/python"
tar -C "$rootfs" -c . | docker import \
  -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_BREAK_SYSTEM_PACKAGES=1 LANG=C.UTF-8' \
  -c 'CMD ["python3"]' - "$IMAGE" >/dev/null
echo "$IMAGE" >"$CACHE_DIR/base-image"
log "base image $IMAGE ready"
