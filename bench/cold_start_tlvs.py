"""Cold-start update TLVs against the minimum, and why each extra one was sent (issue 14).

Runs a cold start of the real router in the simulator (``geo``, 10 simulated seconds) once per
``--window`` value of ``update_coalesce`` and ``--first-hold`` value of ``first_update_hold``,
and prints, for each:

- update TLVs sent (retractions included) against the minimum that delivers the final tables
  (``hyphal.sim.metrics.update_tlvs_minimum``: one per prefix per directed link, split horizon
  excluded), and their ratio;
- how many TLVs were full dumps (to a neighbour that just became usable) and how many triggered;
- why prefixes were queued for a triggered update: their first route, a new next hop, a new
  router id or seqno, a metric change, or a loss;
- link-cost changes after each link's first measurement (RTT samples settling);
- the cold start's convergence (median / p99 / max over the nodes, seconds after boot).

    PYTHONPATH=src python bench/cold_start_tlvs.py --nodes 100 --degree 4 --window 0.03 0.1 0.2
    PYTHONPATH=src python bench/cold_start_tlvs.py --first-hold 0 0.1 0.15

The classification wraps ``Router._reselect`` and ``Router._dump`` from outside (nothing in the
router changes); it repeats the router's own trigger rule to name the reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter
from typing import Any

from hyphal.routing.metric import INFINITY
from hyphal.routing.params import DEFAULT_PARAMS
from hyphal.routing.router import Router
from hyphal.routing.table import PrefixEntry
from hyphal.sim.scenarios import Run
from hyphal.sim.topologies import geo


def _sent(router: Router) -> int:
    return router.counters["updates_sent"] + router.counters["retractions_sent"]


def measure(nodes: int, degree: int, seed: int, window: float, first_hold: float) -> dict[str, Any]:
    reasons: Counter[str] = Counter()
    dumped = 0
    cost_changes = 0
    reselect, dump, on_ihu = Router._reselect, Router._dump, Router._on_ihu

    def counting_ihu(self: Router, nb: Any, ihu: Any, now: float) -> None:
        nonlocal cost_changes
        cost = nb.cost
        on_ihu(self, nb, ihu, now)
        cost_changes += cost < INFINITY and nb.cost != cost

    def counting_reselect(self: Router, entry: PrefixEntry, now: float) -> None:
        queued = entry.prefix in self._pending
        advertised, peer = entry.advertised_metric, entry.advertised_peer
        router_id, seqno = entry.last_router_id, entry.last_seqno
        reselect(self, entry, now)
        if queued or entry.prefix not in self._pending:
            return
        best = entry.selected
        if best is None:
            reasons["lost"] += 1
        elif advertised >= INFINITY:
            reasons["first route"] += 1
        elif best.peer != peer:
            reasons["next hop"] += 1
        elif best.router_id != router_id or best.seqno != seqno:
            reasons["router id / seqno"] += 1
        else:
            reasons["metric"] += 1

    def counting_dump(self: Router, targets: list[Any], now: float) -> None:
        nonlocal dumped
        before = _sent(self)
        dump(self, targets, now)
        dumped += _sent(self) - before

    params = dataclasses.replace(
        DEFAULT_PARAMS, update_coalesce=window, first_update_hold=first_hold
    )
    Router._reselect = counting_reselect  # type: ignore[method-assign]
    Router._dump = counting_dump  # type: ignore[method-assign]
    Router._on_ihu = counting_ihu  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        run = Run(geo(nodes, degree, seed), "cold-start", seed=seed, window=10.0, params=params)
        run.warm()
        cold = run.play().events[0]
        wall = time.perf_counter() - started
    finally:
        Router._reselect = reselect  # type: ignore[method-assign]
        Router._dump = dump  # type: ignore[method-assign]
        Router._on_ihu = on_ihu  # type: ignore[method-assign]
    return {
        "window": window,
        "first_hold": first_hold,
        "convergence": (cold.conv_median, cold.conv_p99, cold.conv_max),
        "sent": run.cold_tlvs,
        "minimum": run.cold_min_tlvs,
        "ratio": run.cold_tlvs / max(1, run.cold_min_tlvs),
        "dumped": dumped,
        "triggered": run.cold_tlvs - dumped,
        "reasons": dict(reasons),
        "cost_changes": cost_changes,
        "wall_s": wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--degree", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--window", type=float, nargs="+", default=[DEFAULT_PARAMS.update_coalesce])
    ap.add_argument(
        "--first-hold", type=float, nargs="+", default=[DEFAULT_PARAMS.first_update_hold]
    )
    args = ap.parse_args()
    print(f"geo {args.nodes} nodes, degree {args.degree}, seed {args.seed}: cold start, 10 s")
    for window in args.window:
        for first_hold in args.first_hold:
            _print(measure(args.nodes, args.degree, args.seed, window, first_hold))


def _print(row: dict[str, Any]) -> None:
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(row["reasons"].items()))
    conv = " / ".join(f"{x:.1f}" for x in row["convergence"])
    print(
        f"window {row['window'] * 1000:.0f} ms, first hold {row['first_hold'] * 1000:.0f} ms: "
        f"converged {conv} s; {row['sent']} TLVs, minimum {row['minimum']}, "
        f"ratio {row['ratio']:.2f}; dumps {row['dumped']}, triggered {row['triggered']}; "
        f"prefixes queued by reason: {reasons}; link-cost changes after the first "
        f"{row['cost_changes']} ({row['wall_s']:.0f} s)"
    )


if __name__ == "__main__":
    main()
