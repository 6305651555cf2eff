"""The busiest node dies silently, at several moments: every node converges within 5 s, p99 2 s.

Issue 14: on geo 300 nodes the busiest node's death took 6-8 s to converge when it fell a few
seconds before the routers' 30 s periodic full dumps. The dumps queued on every link delayed
hellos and IHUs, the averaged RTT rose by tens of percent, link costs moved and routes moved
network wide and back. These runs put the death before, during and after the dump window
(periodic updates fire 27-30 s after boot) and at offsets against the 0.25 s hello timer, on
geo and random topologies at degrees 3 to 8, and check the bound for every alive node and
zero forwarding loops at every sample.
"""

from __future__ import annotations

import pytest

from hyphal.sim import topologies
from hyphal.sim.metrics import convergence_times, percentile
from hyphal.sim.scenarios import Run, _Window

NODES = 48
WARMUP = 15.0
WINDOW = 8.0
SAMPLE_DT = 0.1
MAX_S = 5.0
P99_S = 2.0

# (topology, degree, simulated time of the death). 25.0-28.6 puts the death 2-5 s before or
# inside the periodic-update window; 15.07 / 15.19 sit at different phases of the hello timer.
CASES = [
    ("geo", 3, 25.0),
    ("geo", 3, 26.6),
    ("geo", 4, 15.07),
    ("geo", 4, 25.9),
    ("geo", 6, 27.4),
    ("geo", 8, 25.3),
    ("random", 3, 26.1),
    ("random", 4, 15.19),
    ("random", 5, 25.0),
    ("random", 8, 27.0),
]


@pytest.mark.parametrize(("kind", "degree", "death"), CASES)
def test_busiest_node_death_converges(kind: str, degree: int, death: float) -> None:
    top = topologies.build(kind, NODES, degree, seed=degree)
    run = Run(top, "node-failure", seed=degree, window=WINDOW, warmup=WARMUP, sample_dt=SAMPLE_DT)
    run.warm()
    sim = run.sim
    assert run.events[0].unconverged == 0
    sim.run_until(death)
    victim = run._busiest()
    win = _Window("busiest node dies", sim.now)
    sim.kill_node(victim)
    run._sample(win)
    run._observe(win, death + WINDOW, SAMPLE_DT)
    conv, affected = convergence_times(death, win.states)
    assert affected > 0  # the death moved routes: the run measured something
    assert [s.t for s in win.samples if s.loops] == []
    assert float(conv.max()) <= MAX_S, sorted(conv)[-5:]
    assert percentile(conv, 99) <= P99_S, sorted(conv)[-5:]
    assert win.samples[-1].reach_fraction == 1.0
