#!/usr/bin/env bash
# Command 2: set everything up, then run the whole test suite (lint, types, unit, property,
# simulator and network-namespace tests). Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PYTHONUNBUFFERED=1
echo "== ruff"; .venv/bin/ruff check src tests bench
echo "== mypy"; .venv/bin/mypy
# Unit, property and simulator tests in parallel; the netns tests run one at a time because they
# start real daemons and measure failover, which two busy workers on two cores would distort.
echo "== unit, property and simulator tests"
.venv/bin/pytest -q -n 2 -p no:cacheprovider tests/unit tests/property tests/sim "$@"
echo "== network-namespace tests (real daemons)"
.venv/bin/pytest -q -p no:cacheprovider tests/netns "$@"
