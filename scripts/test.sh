#!/usr/bin/env bash
# Command 2: set everything up, then run the whole test suite (lint, types, unit, property,
# integration, simulator, network-namespace and hostile-input tests). Exits non-zero when
# anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PYTHONUNBUFFERED=1
# The suite runs on machines we do not know (CI's shared cores, a Raspberry Pi): Hypothesis's
# "ci" profile (tests/conftest.py) drops per-example deadlines and derandomizes, with or without
# a CI variable from the runner.
export CI="${CI:-true}"

echo "== ruff"; .venv/bin/ruff check src tests bench examples
.venv/bin/ruff format --check --quiet src tests bench examples || {
    echo "ruff format: the files above are not formatted (run: .venv/bin/ruff format)"; exit 1; }
echo "== mypy"; .venv/bin/mypy
# Unit, property, in-process integration and simulator tests in parallel. The tests that bound
# the event loop's lag (marked loop_lag), the netns and the hostile tests run one at a time: they
# measure the loop or start real daemons and measure failover, which two busy workers on two
# cores would distort.
echo "== unit, property, integration and simulator tests"
.venv/bin/pytest -q -n 2 -p no:cacheprovider -m "not loop_lag" \
    tests/unit tests/property tests/integration tests/sim "$@"
echo "== event-loop lag bounds (one at a time)"
.venv/bin/pytest -q -p no:cacheprovider -m loop_lag tests/unit tests/integration "$@"
echo "== network-namespace and hostile-input tests (real daemons)"
.venv/bin/pytest -q -p no:cacheprovider tests/netns tests/hostile "$@"
