#!/usr/bin/env bash
# Compare two commits on this machine in one run: the TUN throughput bench and the message bench
# for OLD and NEW (default HEAD), back to back. Each commit is checked out in a temporary
# `git worktree` sharing this checkout's .venv, and measured with its own bench scripts and its
# own sources (PYTHONPATH=<tree>/src): `python -m bench.throughput` in that tree, or its
# bench/throughput.py for a commit from before the throughput package. Needs root. Usage:
#
#   sudo ./bench/compare.sh OLD [NEW] [--time 5] [--small-count 100] [--bulk-sizes 1,10]
#
# --time goes to the throughput bench (iperf3 seconds; the systems are veth and hyphal only);
# --small-count and --bulk-sizes go to messages.py. Defaults keep the whole run to a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
venv=${HYPHAL_VENV:-$repo/.venv}  # the virtualenv both trees use
old=${1:?usage: bench/compare.sh OLD [NEW] [--time S] [--small-count N] [--bulk-sizes LIST]}
shift
new=HEAD
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then new=$1; shift; fi
time_s=5 small=100 bulk=1,10
while [ $# -gt 0 ]; do
    case $1 in
        --time) time_s=$2; shift 2 ;;
        --small-count) small=$2; shift 2 ;;
        --bulk-sizes) bulk=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
work=$(mktemp -d /tmp/hyphal-compare-XXXXXX)
trees=()
cleanup() {
    for t in "${trees[@]}"; do git -C "$repo" worktree remove --force "$t" || true; done
    rm -rf "$work"
}
trap cleanup EXIT
for rev in "$old" "$new"; do
    tree=$work/$(git rev-parse --short "$rev")
    git worktree add --quiet --detach "$tree" "$rev"
    trees+=("$tree")
    ln -s "$venv" "$tree/.venv"
done
py=$venv/bin/python
for tree in "${trees[@]}"; do
    rev=$(git -C "$tree" log -1 --format='%h %s')
    echo "=== $rev: throughput (veth, hyphal; iperf3 -t $time_s)"
    if [ -f "$tree/bench/throughput.py" ]; then
        PYTHONPATH=$tree/src "$py" "$tree/bench/throughput.py" --systems hyphal --time "$time_s"
    else
        (cd "$tree" && PYTHONPATH=$tree/src "$py" -m bench.throughput --systems hyphal --time "$time_s")
    fi
    echo "=== $rev: messages (small-count $small, bulk-sizes $bulk)"
    PYTHONPATH=$tree/src "$py" "$tree/bench/messages.py" --small-count "$small" --bulk-sizes "$bulk"
done
