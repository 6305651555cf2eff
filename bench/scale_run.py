"""Scale benchmark helper: geo topologies, node failure and churn, one table.

For each size the network is cold-started once; the warmed-up process then forks, and the
child plays ``churn`` while the parent plays ``node-failure`` (two cores, one warm-up). Each
result is written as JSON next to the table so ``--table`` can print it again.

    python bench/scale_run.py --nodes 300 --nodes 1000 --out bench/results
    python bench/scale_run.py --table bench/results/*.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

from hyphal.sim import topologies
from hyphal.sim.scenarios import Run, RunResult


def _dump(result: RunResult, path: Path) -> None:
    doc = dataclasses.asdict(result)
    doc.pop("samples")
    path.write_text(json.dumps(doc, indent=1, default=float))


def run_size(
    n: int,
    degree: int,
    seed: int,
    out: Path,
    window: float,
    warmup: float,
    fork: bool,
    failure_only: bool = False,
) -> None:
    t0 = time.perf_counter()
    top = topologies.geo(n, degree, seed)
    run = Run(top, "node-failure", seed=seed, window=window, warmup=warmup, churn_time=10.0)
    run.warm()
    print(f"[{n}] warm-up done: {time.perf_counter() - t0:.0f} s wall", flush=True)
    sys.stdout.flush()
    if not fork:
        # Too big to hold twice in memory: play both on the same network, one after the other.
        _dump(run.play(), out / f"geo-{n}-node-failure.json")
        if not failure_only:
            _dump(run.play("churn"), out / f"geo-{n}-churn.json")
    else:
        pid = os.fork()
        if pid == 0:
            try:
                _dump(run.play("churn"), out / f"geo-{n}-churn.json")
            finally:
                os._exit(0)
        _dump(run.play(), out / f"geo-{n}-node-failure.json")
        os.waitpid(pid, 0)
    print(f"[{n}] done: {time.perf_counter() - t0:.0f} s wall", flush=True)


def _fmt(x: float, unit: str = "", digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{x:.{digits}f}{unit}"


def table(paths: list[Path]) -> str:
    docs = [json.loads(p.read_text()) for p in paths]
    docs.sort(key=lambda d: (d["nodes"], d["scenario"]))
    head = (
        "| nodes | links | scenario | event | converged median / p99 / max (s) | not conv. "
        "| loops | stretch p50 / p99 / max | ctl B/node/s (run / idle) | table peak "
        "| mem/node | wall (warm-up + scenario) |"
    )
    lines = [head, "|" + "---|" * 12]
    for d in docs:
        f = d["final"]
        for i, e in enumerate(d["events"]):
            if e["label"] == "cold start" and d["scenario"] != "cold-start":
                continue
            first = i == len(d["events"]) - 1
            lines.append(
                f"| {d['nodes']} | {d['links']} | {d['scenario']} | {e['label']} "
                f"| {_fmt(e['conv_median'])} / {_fmt(e['conv_p99'])} / {_fmt(e['conv_max'])} "
                f"| {e['unconverged']} | {e['max_loops']} "
                + (
                    f"| {_fmt(f['stretch_p50'], digits=3)} / {_fmt(f['stretch_p99'], digits=3)} / "
                    f"{_fmt(f['stretch_max'], digits=3)} "
                    f"| {d['control_bytes_per_node_s']:.0f} / {d['steady_bytes_per_node_s']:.0f} "
                    f"| {d['peak_table_entries']} | {d['memory_per_node'] / 1e6:.1f} MB "
                    f"| {d['warmup_wall_time']:.0f} + "
                    f"{d['wall_time'] - d['warmup_wall_time']:.0f} s |"
                    if first
                    else "| | | | | |"
                )
            )
    cold = [d for d in docs if d["scenario"] == "node-failure"]
    for d in cold:
        e = d["events"][0]
        lines.append(
            f"| {d['nodes']} | {d['links']} | cold start | all nodes boot "
            f"| {_fmt(e['conv_median'])} / {_fmt(e['conv_p99'])} / {_fmt(e['conv_max'])} "
            f"| {e['unconverged']} | {e['max_loops']} | | | | | {d['warmup_wall_time']:.0f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, action="append", default=[])
    ap.add_argument("--degree", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--window", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument("--table", type=Path, nargs="*")
    ap.add_argument("--failure-only", action="store_true", help="skip churn (no fork)")
    ap.add_argument("--fork-max", type=int, default=1500, help="fork after warm-up up to this size")
    args = ap.parse_args()
    if args.table:
        print(table(args.table))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    for n in args.nodes:
        run_size(
            n,
            args.degree,
            args.seed,
            args.out,
            args.window,
            args.warmup,
            n <= args.fork_max,
            args.failure_only,
        )
    print(table(sorted(args.out.glob("geo-*.json"))))


if __name__ == "__main__":
    main()
