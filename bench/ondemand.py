"""On-demand route acquisition vs the full-table router, on the same geo topologies.

For each size the on-demand prototype (``hyphal.sim.ondemand`` on ``hyphal.sim.ondemandnet``)
boots every member, idles through one neighbourhood refresh, then every member starts talking
to ``k`` random destinations (spread over 20 s), the busiest transit node of the active paths
dies silently, and churn follows (members leave for 3 s and return, at max(0.5, n/500) a second,
for 10 s). Printed per size: time to first route (median / p99 / max), per-node state, control
bytes per node per second (idle, while acquiring, under churn), failover after the death, and
forwarding loops over every active pair at every check. The baseline is the full-table router
(``hyphal.sim.engine.Simulator``) on the same topology, measured in the same run at the sizes
given by ``--baseline`` (it does not fit this machine beyond ~1000).

    PYTHONPATH=src nice -n 10 flock /tmp/hyphal-sim.lock \
        python bench/ondemand.py --nodes 1000,3000,10000 --baseline 300,1000 --json out.json
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np

from hyphal.sim import topologies
from hyphal.sim.metrics import deep_size, dijkstra, router_memory
from hyphal.sim.ondemandnet import OnDemandNet

IDLE_FROM, IDLE_TO = 6.0, 36.0
ACTIVE_FROM, ACTIVE_TO = 36.0, 56.0
SETTLE = 62.0
FAIL_WINDOW = 10.0
CHURN_S = 10.0


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ondemand_run(
    n: int, degree: int, k: int, seed: int, landmarks: int | None = None
) -> dict[str, object]:
    wall0 = time.perf_counter()
    topo = topologies.build("geo", n, degree, seed)
    net = OnDemandNet(topo, seed=seed, landmarks=landmarks)
    rng = random.Random(f"bench-{seed}")
    for i in range(n):
        net.start(i, jitter=0.5)
    net.run_until(IDLE_FROM)
    b0 = net.sent_bytes()
    net.run_until(IDLE_TO)
    idle = (net.sent_bytes() - b0) / n / (IDLE_TO - IDLE_FROM)

    # Every member starts talking to k random destinations.
    wants: dict[tuple[int, int], float] = {}
    for s in range(n):
        for d in rng.sample(range(n - 1), k):
            d = d if d < s else d + 1
            at = ACTIVE_FROM + rng.random() * (ACTIVE_TO - ACTIVE_FROM - 2.0)
            wants[(s, d)] = at
            net.engine.schedule(at, functools.partial(net.want, s, d))
    b0 = net.sent_bytes()
    net.run_until(ACTIVE_TO)
    active = (net.sent_bytes() - b0) / n / (ACTIVE_TO - ACTIVE_FROM)
    net.run_until(SETTLE)
    first = []
    missing = 0
    for (s, d), at in wants.items():
        t = net.acquired.get((s, net.members[d].prefix))
        if t is None:
            missing += 1
        else:
            first.append(max(0.0, t - at))
    walks = Counter(net.walk(s, d)[0] for s, d in wants)
    sizes = [m.core.state_size() for m in net.members if m.core is not None]
    routes = [s["routes"] for s in sizes]
    prefixes = [s["ballPrefixes"] + s["ondemandPrefixes"] for s in sizes]
    ball = [s["ballPrefixes"] for s in sizes]
    mem = []
    for i in rng.sample(range(n), min(16, n)):
        core = net.members[i].core
        assert core is not None
        shared = {id(net.params), id(core._verifier), id(core._signer), id(core._wall)}
        mem.append(deep_size(core, shared))
    # Stretch of acquired paths: path latency over the shortest path, for a sample of pairs.
    adj = topo.adjacency()
    adj_list = [list(nb.items()) for nb in adj]
    stretches = []
    by_src: dict[int, list[int]] = {}
    for s, d in rng.sample(sorted(wants), min(200, len(wants))):
        by_src.setdefault(s, []).append(d)
    for s, ds in by_src.items():
        dist = dijkstra(adj_list, s)
        for d in ds:
            result, path = net.walk(s, d)
            if result == "ok" and dist[d] > 0:
                lat = sum(adj[a][b] for a, b in itertools.pairwise(path))
                stretches.append(lat / dist[d])

    # Failover: the member carrying the most active paths dies silently.
    through: Counter[int] = Counter()
    paths = {}
    for s, d in wants:
        result, path = net.walk(s, d)
        if result == "ok":
            paths[(s, d)] = path
            through.update(path[1:-1])
    victim = through.most_common(1)[0][0]
    affected = [sd for sd, path in paths.items() if victim in path[1:-1]]
    t_kill = net.now
    net.kill(victim)
    recovered: dict[tuple[int, int], float] = {}
    fail_loops = 0
    t = t_kill
    while t < t_kill + FAIL_WINDOW:
        t += 0.1
        net.run_until(t)
        for sd in affected:
            result, _ = net.walk(*sd)
            fail_loops += result == "loop"
            if result == "ok":
                recovered.setdefault(sd, t - t_kill)
            else:
                recovered.pop(sd, None)
    fail = list(recovered.values())
    net.start(victim)

    # Churn: members leave silently and come back 3 s later (new router id), re-wanting.
    net.run_until(net.now + 2.0)
    b0 = net.sent_bytes()
    churn_from = net.now
    rate = max(0.5, n / 500)
    t = churn_from
    down: list[tuple[float, int]] = []
    while t < churn_from + CHURN_S:
        t += rng.expovariate(rate)
        victim_c = rng.randrange(n)
        if net.members[victim_c].core is None or victim_c == victim:
            continue

        def leave(v: int = victim_c) -> None:
            net.kill(v)

        def back(v: int = victim_c) -> None:
            net.start(v)
            for s, d in wants:
                if s == v:
                    net.engine.schedule(net.now + 3.0, functools.partial(net.want, s, d))

        net.engine.schedule(t, leave)
        net.engine.schedule(t + 3.0, back)
        down.append((t, victim_c))
    net.run_until(churn_from + CHURN_S + 3.0)
    churn = (net.sent_bytes() - b0) / n / (net.now - churn_from)
    net.run_until(net.now + 10.0)
    after = Counter(net.walk(s, d)[0] for s, d in wants)
    counters: Counter[str] = Counter()
    for m in net.members:
        if m.core is not None:
            counters.update(m.core.counters.values)
    return {
        "system": "ondemand",
        "nodes": n,
        "links": len(topo.edges),
        "k": k,
        "firstRouteS": {
            "median": pct(first, 50),
            "p99": pct(first, 99),
            "max": max(first, default=0.0),
            "pairs": len(wants),
            "unanswered": missing,
        },
        "landmarks": len(net.landmarks),
        "walksAfterAcquire": dict(walks),
        "stretch": {
            "median": pct(stretches, 50),
            "p99": pct(stretches, 99),
            "max": max(stretches, default=0.0),
        },
        "stateRoutes": {"mean": float(np.mean(routes)), "p99": pct(routes, 99), "max": max(routes)},
        "statePrefixes": {
            "mean": float(np.mean(prefixes)),
            "p99": pct(prefixes, 99),
            "max": max(prefixes),
        },
        "neighbourhoodPrefixesMean": float(np.mean(ball)),
        "memPerNodeBytes": float(np.mean(mem)),
        "ctlBytesPerNodeS": {"idle": idle, "acquiring": active, "churn": churn},
        "failover": {
            "victimPaths": len(affected),
            "median": pct(fail, 50),
            "p99": pct(fail, 99),
            "max": max(fail, default=0.0),
            "unrecovered": len(affected) - len(fail),
            "loopSamples": fail_loops,
        },
        "churnEvents": len(down),
        "walksAfterChurn": dict(after),
        "counters": dict(counters),
        "wallS": time.perf_counter() - wall0,
        "rssMB": rss_mb(),
    }


def baseline_run(n: int, degree: int, seed: int) -> dict[str, object]:
    """The full-table router on the same topology: cold start, then idle load and state."""
    from hyphal.sim.engine import Simulator

    wall0 = time.perf_counter()
    topo = topologies.build("geo", n, degree, seed)
    sim = Simulator(topo, seed=seed)
    for i in range(n):
        sim.start_node(i, connect_jitter=0.5)
    sim.run_until(10.0)
    b0 = sim.total_sent()[1]
    sim.run_until(12.0)
    idle = (sim.total_sent()[1] - b0) / n / 2.0
    routes = []
    for node in sim.nodes:
        if node.router is not None:
            routes.append(len(node.router.selected_routes()) + len(node.router.fallback_routes()))
    mem = router_memory(sim, random.Random(seed).sample(range(n), min(8, n)))
    return {
        "system": "full-table",
        "nodes": n,
        "links": len(topo.edges),
        "stateRoutes": {"mean": float(np.mean(routes)), "p99": pct(routes, 99), "max": max(routes)},
        "statePrefixes": {"mean": float(n - 1), "p99": float(n - 1), "max": n - 1},
        "memPerNodeBytes": mem,
        "ctlBytesPerNodeS": {"idleHellos": idle, "coldStart": sim.total_sent()[1] / n / 12.0},
        "wallS": time.perf_counter() - wall0,
        "rssMB": rss_mb(),
    }


def show(r: dict[str, object]) -> str:
    return json.dumps(r, indent=None, default=float)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--nodes", default="1000,3000,10000", help="on-demand sizes, comma-separated")
    ap.add_argument("--baseline", default="300", help="full-table sizes ('' for none)")
    ap.add_argument("--degree", type=int, default=3)
    ap.add_argument("--k", type=int, default=4, help="active destinations per member")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--landmarks",
        type=int,
        default=None,
        help="landmark count (default sqrt(n); 0: flood only)",
    )
    ap.add_argument("--json", metavar="FILE", help="also write every result to FILE")
    args = ap.parse_args()
    results = []
    for n in [int(x) for x in args.baseline.split(",") if x]:
        results.append(baseline_run(n, args.degree, args.seed))
        print(show(results[-1]), flush=True)
    for n in [int(x) for x in args.nodes.split(",") if x]:
        results.append(ondemand_run(n, args.degree, args.k, args.seed, args.landmarks))
        print(show(results[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=float)
    print(f"done: {len(results)} runs", file=sys.stderr)


if __name__ == "__main__":
    main()
