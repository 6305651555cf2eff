#!/usr/bin/env bash
# Installs everything hyphal needs on a Debian machine: system packages (when root and missing)
# and a virtualenv in .venv with hyphal and its pinned dependencies. Safe to run again: it only
# does work that is not done yet. `--bench` also installs the benchmarks' baselines (scamper,
# yggdrasil, wireguard-go and wg), which the tests do not need.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(python3 python3-venv python3-dev gcc iproute2 iputils-ping iperf3 traceroute curl procps systemd bind9-dnsutils dnsmasq-base postgresql libpq5 inspircd nginx-light haproxy ngircd)
case "${1:-}" in
  --bench) DEBIAN_PACKAGES+=(scamper yggdrasil wireguard-go wireguard-tools) ;;
  "") ;;
  *) echo "usage: $0 [--bench]" >&2; exit 2 ;;
esac
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
fi
# python3 may come from elsewhere (pyenv); only insist on the Debian one when there is none.
if command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  missing=("${missing[@]/python3}"); missing=("${missing[@]/python3-venv}"); missing=("${missing[@]/python3-dev}")
fi
read -r -a missing <<< "${missing[*]:-}"
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages (install them as root): ${missing[*]}" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
stamp=.venv/.hyphal-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating virtualenv .venv"
  "$PYTHON" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing hyphal and its pinned dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi
