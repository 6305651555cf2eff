"""Router state stays compact: memory per (router, prefix) after a cold start, measured the way
the simulator reports it (``router_memory``), is pinned well below the per-route-dict layout
this replaced (about 4 kB per prefix at degree 4; docs/scaling.md)."""

from __future__ import annotations

from hyphal.sim.engine import Simulator
from hyphal.sim.metrics import router_memory
from hyphal.sim.topologies import geo

NODES = 60
DEGREE = 4
BOUND = 2_000  # bytes per prefix per router; 1.7 kB measured at this size


def test_router_memory_per_prefix_is_bounded() -> None:
    sim = Simulator(geo(NODES, DEGREE, 1), seed=1)
    for node in range(NODES):
        sim.start_node(node)
    sim.run_until(20.0)
    routers = [node.router for node in sim.nodes]
    assert all(r is not None and r.route_count() == NODES - 1 for r in routers)
    per_prefix = router_memory(sim, list(range(NODES))) / NODES
    assert per_prefix <= BOUND, f"{per_prefix:.0f} B per prefix per router"
