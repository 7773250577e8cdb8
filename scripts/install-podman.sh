#!/usr/bin/env bash
# Installs what `make compose-test` runs containers with, on a Debian bookworm host without a
# Docker engine: podman 4.3 (its Docker-compatible API serves Compose v2), runc, netavark and
# debootstrap (the base images are made locally: no registry is reachable). Skips what is present.
#
# /etc/containers/containers.conf gets two settings these hosts need (docs/deployment.md, measured):
#   default_ulimits  crun/runc may not raise RLIMIT_NOFILE/NPROC above the host's hard limits here
#                    ("setrlimit RLIMIT_NOFILE: Operation not permitted")
#   runtime = runc   crun refuses the hybrid cgroup layout of these VMs
# An existing containers.conf is left alone when it already names both; otherwise the script stops.
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(podman runc slirp4netns netavark aardvark-dns fuse-overlayfs uidmap debootstrap
  iptables conmon catatonit golang-github-containers-common)
conf=/etc/containers/containers.conf

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-podman: need root or sudo" >&2; exit 1; }
  SUDO="sudo"
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || { echo "install-podman: apt-get not found" >&2; exit 1; }
  echo "install-podman: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -e "$conf" ]; then
  echo "install-podman: writing $conf"
  $SUDO mkdir -p "$(dirname "$conf")"
  printf '%s\n' '[containers]' 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' \
    '' '[engine]' 'runtime = "runc"' | $SUDO tee "$conf" >/dev/null
elif ! grep -q '^default_ulimits' "$conf" || ! grep -q '^runtime *= *"runc"' "$conf"; then
  echo "install-podman: $conf exists without default_ulimits and runtime = \"runc\": add them" >&2
  exit 1
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-podman: podman, runc, netavark and debootstrap already installed"
else
  echo "install-podman: done ($(podman --version))"
fi
