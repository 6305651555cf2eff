#!/usr/bin/env bash
# Scale benchmark of the real router in the simulator (issue 14): geo topologies at 300 / 1000
# (/ 3000) nodes and degrees 3 / 4 / 6; one table with convergence median / p99 / max after a
# random and the busiest node's silent death, loops, stretch, control bytes per node per second
# (idle, cold start, peak second after a failure), router memory per node, peak PSS, wall and
# CPU time per row. JSON per row in $OUT (bench/results/, git-ignored).
#
#   bench/scale.sh                          # 300 and 1000 nodes, degrees 3 4 6, this tree
#   bench/scale.sh --compare 84c2d6c        # the same rows with the code of 84c2d6c, same run
#   OLD=cf8aaa3 SIZES=300 DEGREES=4 bench/scale.sh
#   bench/scale.sh --with-3000              # add the 3000-node rows (if they fit: see below)
#   bench/scale.sh -- --no-pool-too         # each row also without the announcement pool
#   bench/scale.sh --sizes "300" --degrees "3 6" -- --death-at 26   # after --: scale_run.py
#
# The old code runs from a temporary `git worktree add --detach` of REV (removed at exit,
# nothing committed). Each row runs in its own process group; a row whose memory, extrapolated
# from a smaller row of the same code, would not fit (or that grows past the limit) is reported
# as "does not fit" instead of swapping. Run it under the shared lock:
#   nice -n 10 flock /tmp/hyphal-sim.lock bench/scale.sh --compare cf8aaa3
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
  PY=.venv/bin/python
  [ -x "$PY" ] || PY=/work/main/.venv/bin/python
  [ -x "$PY" ] || PY=python3
fi
OUT=${OUT:-bench/results}
SIZES=${SIZES:-"300 1000"}
DEGREES=${DEGREES:-"3 4 6"}
OLD=${OLD:-}
extra=()
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --compare) OLD=${2:-84c2d6c}; shift 2 ;;
    --compare=*) OLD=${1#*=}; shift ;;
    --sizes) SIZES=$2; shift 2 ;;
    --degrees) DEGREES=$2; shift 2 ;;
    --with-3000) SIZES="$SIZES 3000"; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra+=("$@"); break ;;
    *) extra+=("$1"); shift ;;
  esac
done
sides=()
if [ -n "$OLD" ]; then
  old=$(mktemp -d /tmp/hyphal-scale-old.XXXXXX)
  trap 'git worktree remove --force "$old" >/dev/null 2>&1 || rm -rf "$old"; git worktree prune' EXIT
  git worktree add --detach "$old" "$OLD" >/dev/null 2>&1
  export REV_OLD=$(git -C "$old" rev-parse --short HEAD)
  sides+=(--side "old=$old/src")
fi
export REV_NEW="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo +dirty)"
sides+=(--side "new=$PWD/src")
args=()
for n in $SIZES; do args+=(--nodes "$n"); done
for d in $DEGREES; do args+=(--degree "$d"); done
echo "scale: sizes $SIZES, degrees $DEGREES; new $REV_NEW${OLD:+, old $REV_OLD ($OLD)}" >&2
PYTHONPATH=$PWD/src "$PY" bench/scale_run.py "${sides[@]}" "${args[@]}" --out "$OUT" \
  --python "$PY" "${extra[@]}"
