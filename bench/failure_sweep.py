"""Busiest-node failure at several moments of death: convergence per moment, one JSON line each.

Warms one network up (15 s, like ``hyphal sim``), then forks once per moment: the child kills
the busiest node at that simulated time and samples every 0.1 s for the window. It imports
``hyphal`` from ``PYTHONPATH``, so ``bench/failure_sweep.sh`` runs the same script against the
old code and the new in one run.

    PYTHONPATH=src python bench/failure_sweep.py --topology geo --nodes 300 --degree 3 \
        --deaths 15,25,26,29
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from hyphal.sim import topologies
from hyphal.sim.metrics import convergence_times, percentile
from hyphal.sim.scenarios import Run, _Window


def _one(run: Run, death: float, window: float) -> dict[str, object]:
    sim = run.sim
    sim.run_until(death)
    victim = run._busiest()
    before = sim.total_sent()[1]
    wall = time.perf_counter()
    win = _Window("busiest node dies", sim.now)
    sim.kill_node(victim)
    run._sample(win)
    run._observe(win, death + window, 0.1)
    conv, affected = convergence_times(death, win.states)
    alive = max(1, len(sim.alive_indices()))
    return {
        "death": death,
        "victim": victim,
        "affected": affected,
        "median": percentile(conv, 50),
        "p99": percentile(conv, 99),
        "max": float(conv.max()),
        "unconverged": int(np.isinf(conv).sum()),
        "loops": max(s.loops for s in win.samples),
        "bytesPerNodeS": (sim.total_sent()[1] - before) / alive / window,
        "wall": time.perf_counter() - wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--topology", default="geo")
    ap.add_argument("--nodes", type=int, default=300)
    ap.add_argument("--degree", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--deaths", default="15,25,26,29", help="simulated times of death, comma separated"
    )
    ap.add_argument("--window", type=float, default=8.0)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    t0 = time.perf_counter()
    top = topologies.build(args.topology, args.nodes, args.degree, args.seed)
    run = Run(top, "node-failure", seed=args.seed, window=args.window, warmup=15.0)
    run.warm()
    warm = time.perf_counter() - t0
    for death in (float(x) for x in args.deaths.split(",")):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.write(w, json.dumps(_one(run, death, args.window)).encode())
            os._exit(0)
        os.close(w)
        chunks = []
        while chunk := os.read(r, 1 << 16):
            chunks.append(chunk)
        os.close(r)
        os.waitpid(pid, 0)
        row = json.loads(b"".join(chunks))
        row.update(
            label=args.label,
            topology=args.topology,
            nodes=args.nodes,
            degree=args.degree,
            links=len(top.edges),
            warmWall=warm,
        )
        print(json.dumps(row), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
