#!/usr/bin/env bash
# Command 2: set everything up, then run the whole test suite (lint, types, unit, property,
# integration, simulator, network-namespace and hostile-input tests). Exits non-zero when
# anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PYTHONUNBUFFERED=1

# Those of the given test directories that exist (tests/integration and
# tests/hostile are optional).
existing() { for d in "$@"; do [ -d "$d" ] && printf '%s\n' "$d"; done; return 0; }

# pytest exits 5 when it collects nothing (an empty optional directory): that is not a failure.
run_pytest() {
    local rc=0
    .venv/bin/pytest "$@" || rc=$?
    if [ "$rc" -eq 5 ]; then echo "(no tests collected)"; return 0; fi
    return "$rc"
}

echo "== ruff"; .venv/bin/ruff check src tests bench
echo "== mypy"; .venv/bin/mypy
# Unit, property, in-process integration and simulator tests in parallel; the netns and hostile
# tests run one at a time because they start real daemons and measure failover, which two busy
# workers on two cores would distort.
mapfile -t fast < <(existing tests/unit tests/property tests/integration tests/sim)
echo "== unit, property, integration and simulator tests"
run_pytest -q -n 2 -p no:cacheprovider "${fast[@]}" "$@"
mapfile -t slow < <(existing tests/netns tests/hostile)
echo "== network-namespace and hostile-input tests (real daemons)"
run_pytest -q -p no:cacheprovider "${slow[@]}" "$@"
