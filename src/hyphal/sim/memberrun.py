"""The membership measurement: propagation, idle and churn cost, memory, on one MemberNet.

:func:`measure` runs, on a warm-started :class:`~hyphal.sim.membernet.MemberNet`:

1. **settle** ``settle`` seconds (longer than the summaries' settling window);
2. **idle** ``idle`` seconds: only the refreshes of a steady state (spread over the refresh
   interval) and the anti-entropy summaries; bytes sent per node per second, framing included;
3. **propagation**: ``changes`` members, one every ``change_gap`` seconds, change a tag; for each
   change, the time until each node stored it (pooled p50 / p99 / max over every (change, node)
   arrival) and per change the time to 99 % and to 100 % of the nodes;
4. **churn** ``churn`` seconds: ``churn_per_min`` (fraction of the members per minute) events,
   70 % record updates, 15 % graceful leaves (tombstone, then the node stops), 15 % returns of a
   stopped node with an empty store (a full sync from its neighbours); bytes per node per second;
5. **memory**: deep size of one node's store (every object reachable from it, once) divided by
   its members: what a daemon holds per member.

Every part is a pure function of the topology and the seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hyphal.membership.params import DEFAULT_PARAMS, MembershipParams
from hyphal.sim.membernet import MemberNet
from hyphal.sim.metrics import deep_size
from hyphal.sim.topologies import Topology


def member_fields(i: int) -> dict[str, object]:
    """A realistic record: name, region, role, two tags, two endpoints, software version."""
    return {
        "name": f"node-{i}",
        "region": ("fra", "ams", "nyc", "sin", "syd")[i % 5],
        "roles": ["peer"],
        "tags": {"os": "linux", "rack": f"r{i % 40}"},
        "endpoints": [f"tcp://[2001:db8::{i:x}]:9651", f"tcp://198.51.100.{i % 250}:9651"],
        "software": "hyphal 0.1.0",
    }


@dataclass
class MemberRunResult:
    nodes: int
    links: int
    record_bytes: int
    wall_time_s: float = 0.0
    idle_bytes_per_node_s: float = 0.0
    churn_bytes_per_node_s: float = 0.0
    churn_events: int = 0
    prop_p50_s: float = 0.0
    prop_p99_s: float = 0.0
    prop_max_s: float = 0.0
    change_to_99pct_max_s: float = 0.0
    change_to_all_max_s: float = 0.0
    changes_incomplete: int = 0
    """Changes that had not reached every live node when the run ended."""
    memory_per_member_b: float = 0.0
    converged_at_end: bool = False
    counters: dict[str, int] = field(default_factory=dict)


def _bytes(net: MemberNet) -> int:
    return sum(net.sent_bytes)


def measure(
    topology: Topology,
    *,
    seed: int = 1,
    params: MembershipParams = DEFAULT_PARAMS,
    settle: float = 12.0,
    idle: float = 30.0,
    changes: int = 20,
    change_gap: float = 0.5,
    churn: float = 30.0,
    churn_per_min: float = 0.1,
    tail: float = 15.0,
) -> MemberRunResult:
    started = time.monotonic()
    net = MemberNet(topology, seed=seed, params=params)
    net.keep_events = False
    net.warm_start(member_fields)
    n = topology.n
    first = net.cores[0]
    assert first is not None and first.own_record is not None
    result = MemberRunResult(n, len(topology.edges), len(first.own_record.encode()))
    net.run_for(settle)

    b0 = _bytes(net)
    net.run_for(idle)
    result.idle_bytes_per_node_s = (_bytes(net) - b0) / n / idle

    rng = net.rng
    keys = []
    for k in range(changes):
        i = rng.randrange(n)
        keys.append(net.publish(i, tags={"os": "linux", "rack": f"r{i % 40}", "change": str(k)}))
        net.run_for(change_gap)
    net.run_for(tail)
    pooled: list[float] = []
    for key in keys:
        arrivals = net.tracked.pop(key)
        t0 = min(arrivals.values())
        delays = sorted(t - t0 for t in arrivals.values())
        if len(arrivals) < n:
            result.changes_incomplete += 1
        pooled.extend(delays)
        idx99 = max(0, int(np.ceil(0.99 * n)) - 1)
        to99 = delays[idx99] if idx99 < len(delays) else float("inf")
        result.change_to_99pct_max_s = max(result.change_to_99pct_max_s, to99)
        result.change_to_all_max_s = max(
            result.change_to_all_max_s, delays[-1] if len(arrivals) == n else float("inf")
        )
    arr = np.array(pooled)
    result.prop_p50_s = float(np.percentile(arr, 50))
    result.prop_p99_s = float(np.percentile(arr, 99))
    result.prop_max_s = float(arr.max())

    stopped: list[int] = []
    b0 = _bytes(net)
    rate = churn_per_min * n / 60.0
    t_end = net.now + churn
    while net.now < t_end:
        net.run_for(rng.expovariate(rate) if rate > 0 else churn)
        if net.now >= t_end:
            break
        result.churn_events += 1
        roll = rng.random()
        alive = net.alive()
        if roll < 0.15 and stopped:
            i = stopped.pop(rng.randrange(len(stopped)))
            net.start(i, member_fields(i))
        elif roll < 0.30 and len(alive) > 2:
            i = alive[rng.randrange(1, len(alive))]
            net.leave(i)
            net.tracked.pop(net.track(i), None)
            net.run_for(0.5)
            net.stop(i)
            stopped.append(i)
        else:
            i = alive[rng.randrange(len(alive))]
            net.publish(i, track=False, tags={"os": "linux", "churn": str(result.churn_events)})
    result.churn_bytes_per_node_s = (_bytes(net) - b0) / n / churn

    net.run_for(tail)
    result.converged_at_end = net.converged()
    exclude = {id(net.verifier), id(net.verifier.__dict__), id(params), id(net.engine)}
    store = first.store
    exclude |= {id(store.verifier), id(store.observer)}
    result.memory_per_member_b = deep_size(store, exclude) / max(1, store.member_count())
    counters: dict[str, int] = {}
    for core in net.cores:
        if core is None:
            continue
        for name, value in {**core.counters, **core.store.counters}.items():
            counters[name] = counters.get(name, 0) + value
    result.counters = {k: v for k, v in counters.items() if v}
    result.wall_time_s = time.monotonic() - started
    return result
