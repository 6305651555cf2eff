#!/usr/bin/env bash
# Scale benchmark of the real router in the simulator: geo topologies at 300, 1000 and 3000
# nodes, node failure and churn; prints one table (simulated convergence median/p99/max over
# nodes, stretch, control bytes per node per second, router memory per node, wall-clock time).
#
#   bench/scale.sh                      # all sizes (slow: see docs/simulator.md)
#   SIZES="300 1000" bench/scale.sh     # a subset
#   bench/scale.sh --degree 4           # extra flags go to bench/scale_run.py
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-bench/results}
SIZES=${SIZES:-"300 1000 3000"}
args=()
for n in $SIZES; do args+=(--nodes "$n"); done
exec "$PY" bench/scale_run.py "${args[@]}" --out "$OUT" "$@"
