#!/usr/bin/env bash
# Busiest-node failure, old code against new in one run: the moment of death is swept across
# the hello and periodic-update timers (issue 14). The old code is a temporary git worktree of
# BASE (default cf8aaa3, before the fix), removed at the end; nothing of it is committed.
#
#   bench/failure_sweep.sh                          # geo 300, degrees 3 and 4
#   NODES=1000 DEGREES="3 4 6" bench/failure_sweep.sh
#   DEATHS=15,25,26.5,28 TOPOLOGY=random bench/failure_sweep.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BASE=${BASE:-cf8aaa3}
NODES=${NODES:-300}
DEGREES=${DEGREES:-"3 4"}
DEATHS=${DEATHS:-15,25,26,29}
TOPOLOGY=${TOPOLOGY:-geo}
OUT=${OUT:-bench/results/failure-sweep.jsonl}
mkdir -p "$(dirname "$OUT")"
old=$(mktemp -d /tmp/hyphal-base.XXXXXX)
trap 'git worktree remove --force "$old" >/dev/null 2>&1 || rm -rf "$old"' EXIT
git worktree add --detach "$old" "$BASE" >/dev/null 2>&1
: > "$OUT"
for d in $DEGREES; do
  for side in old new; do
    src=$PWD/src; [ "$side" = old ] && src=$old/src
    PYTHONPATH=$src "$PY" bench/failure_sweep.py --topology "$TOPOLOGY" --nodes "$NODES" \
      --degree "$d" --deaths "$DEATHS" --label "$side" >> "$OUT"
  done
done
"$PY" - "$OUT" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"{'code':4} {'topology':8} {'nodes':>5} {'deg':>3} {'death s':>7} {'median':>6} {'p99':>5} "
      f"{'max':>5} {'loops':>5} {'B/node/s':>8} {'wall s':>6}")
for r in rows:
    print(f"{r['label']:4} {r['topology']:8} {r['nodes']:>5} {r['degree']:>3} {r['death']:>7.2f} "
          f"{r['median']:>6.1f} {r['p99']:>5.1f} {r['max']:>5.1f} {r['loops']:>5} "
          f"{r['bytesPerNodeS']:>8.0f} {r['wall']:>6.0f}")
PY
