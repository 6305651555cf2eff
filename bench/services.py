"""Service addresses benchmark: throughput and latency through a service's address vs the
instance's own overlay address, in the same run, between the same two daemons.

Two namespaces A (client) and B (the instance of service "perf", TCP port 5201) from the shared
lab (``bench.throughput.lab.Pair``). The two targets alternate on every repetition, so a busy
machine slows both alike:

* **direct**: ``iperf3``/``ping -6`` to B's overlay address (the ordinary dataplane);
* **service address**: the same to the service's address; A's node pins the flow to B and seals
  for B's key, B's kernel owns the address.

The difference is the cost of the flow table and the extra checks per packet.

    flock /tmp/hyphal-heavy.lock .venv/bin/python bench/services.py [--time 5] [--repeat 3]
        [--pings 50] [--json]

Needs root. Everything lives in throwaway namespaces and is removed on exit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from hyphal.node.members import PUBLIC_NETWORK
from hyphal.services.address import service_address
from hyphal.testing.netlab import has_route
from throughput.lab import Pair
from throughput.measure import measure_iperf, measure_ping
from throughput.results import Iperf, Rtt

SERVICE = "perf"
PORT = 5201


def start(workdir: Path) -> Pair:
    pair = Pair.build(workdir)
    config = pair.b.dir / "services.toml"
    config.write_text(f'[[service]]\nname = "{SERVICE}"\nport = {PORT}\ncheck = "none"\n')
    pair.b.extra_args = ["-c", str(config)]
    pair.topo.start()
    pair.wait(lambda: has_route(pair.a, pair.b) and has_route(pair.b, pair.a), 30, "routes")
    pair.wait(
        lambda: pair.a.api("GET", f"/api/v1/services/{SERVICE}/choose").status == 200,
        30,
        "the instance known on A",
    )
    vip = service_address(PUBLIC_NETWORK, SERVICE)
    pair.wait(lambda: pair.ping_ok(pair.a, str(vip)), 30, "the service address answers")
    return pair


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run(seconds: int, repeat: int, pings: int) -> dict[str, object]:
    vip = str(service_address(PUBLIC_NETWORK, SERVICE))
    with tempfile.TemporaryDirectory(prefix="hyphal-bench-services-") as tmp:
        pair = start(Path(tmp))
        try:
            direct = str(pair.b.address)
            targets = {"direct": direct, "service address": vip}
            rtts: dict[str, list[Rtt]] = {name: [] for name in targets}
            single: dict[str, list[Iperf]] = {name: [] for name in targets}
            multi: dict[str, list[Iperf]] = {name: [] for name in targets}
            for _ in range(repeat):
                for name, addr in targets.items():
                    rtts[name].append(measure_ping(pair, addr, pings, 0.02))
                    single[name].append(measure_iperf(pair, addr, 1, seconds))
                    multi[name].append(measure_iperf(pair, addr, 4, seconds))
            flows = pair.a.get("/api/v1/service-addresses")
        finally:
            pair.close()
    rows = {}
    for name in targets:
        rows[name] = {
            "address": targets[name],
            "rttP50Ms": median([r.p50_ms for r in rtts[name] if r.p50_ms is not None]),
            "rttP99Ms": median([r.p99_ms for r in rtts[name] if r.p99_ms is not None]),
            "gbps1": median([i.gbps for i in single[name]]),
            "gbps4": median([i.gbps for i in multi[name]]),
            "runs": [asdict(i) for i in single[name] + multi[name]],
        }
    return {
        "seconds": seconds,
        "repeat": repeat,
        "pings": pings,
        "rows": rows,
        "flowsOnClient": flows.get("flows"),
        "clientCounters": flows.get("flowsByState"),
    }


def table(result: dict[str, object]) -> str:
    rows = result["rows"]
    assert isinstance(rows, dict)
    head = f"{'target':<17} {'RTT p50 ms':>10} {'RTT p99 ms':>10} {'Gbit/s -P1':>11} {'-P4':>7}"
    lines = [head, "-" * len(head)]
    for name, row in rows.items():
        lines.append(
            f"{name:<17} {row['rttP50Ms']:>10.3f} {row['rttP99Ms']:>10.3f} "
            f"{row['gbps1']:>11.3f} {row['gbps4']:>7.3f}"
        )
    base, vip = rows["direct"], rows["service address"]
    lines.append(
        f"service address / direct: throughput {vip['gbps1'] / base['gbps1']:.2f}x (-P1), "
        f"{vip['gbps4'] / base['gbps4']:.2f}x (-P4); "
        f"RTT p50 +{vip['rttP50Ms'] - base['rttP50Ms']:.3f} ms"
    )
    lines.append(
        f"medians of {result['repeat']} runs of iperf3 -t {result['seconds']} and "
        f"{result['pings']} pings each, targets alternating"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Throughput and latency through a service address vs the instance's own "
        "overlay address, measured in the same run (needs root)."
    )
    parser.add_argument("--time", type=int, default=5, help="seconds per iperf3 run [5]")
    parser.add_argument("--repeat", type=int, default=3, help="runs per target [3]")
    parser.add_argument("--pings", type=int, default=50, help="pings per run [50]")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(args.time, args.repeat, args.pings)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
