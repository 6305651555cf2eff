#!/usr/bin/env bash
# TUN data-plane benchmark: hyphal vs the raw veth (and yggdrasil / wireguard-go when installed),
# measured in one run between two throwaway network namespaces. Needs root. Arguments go to
# `python -m bench.throughput` (--time, --repeat, --pings, --systems, --profile, --json, ...; see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --bench
exec .venv/bin/python -m bench.throughput "$@"
