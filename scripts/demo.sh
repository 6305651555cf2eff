#!/usr/bin/env bash
# Command 1: set everything up, then run the demo mesh.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/hyphal demo "$@"
