"""Shared, cached simulator runs: each (topology, scenario) is simulated once per session."""

from __future__ import annotations

from functools import cache

from hyphal.sim import topologies
from hyphal.sim.scenarios import Run, RunResult

SMALL = 60
WINDOW = 8.0
WARMUP = 8.0


@cache
def small_run(scenario: str, kind: str = "geo", nodes: int = SMALL, seed: int = 3) -> RunResult:
    top = topologies.build(kind, nodes, 3, seed)
    return Run(top, scenario, seed=seed, window=WINDOW, warmup=WARMUP).run()
