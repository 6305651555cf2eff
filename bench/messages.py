"""Message bus benchmark: API latency and bulk throughput vs raw overlay TCP, in one run.

A 3-node line ``A - B - C`` of real hyphal daemons in network namespaces (built with
``hyphal.testing.netlab``), started WITH their TUN devices so the same daemons carry both:

* **small-message latency**: ``--small-count`` messages of ``--small-size`` bytes from A to C
  through the HTTP API. A client inside A's namespace POSTs ``/api/v1/messages`` (one keep-alive
  connection, one message every ``--small-interval`` s); a client inside C's namespace
  long-polls ``GET /api/v1/messages?timeout=..``. Latency = C's client has the message minus A's
  client started the POST (both read ``CLOCK_MONOTONIC``, which namespaces share). p50 / p99.
* **bulk throughput**: ``--bulk-sizes`` messages (MB, default 1 and 100), same clients: from the
  start of the POST on A to the end of the long-poll response body on C, payload verified with
  SHA-256. MB/s = 10^6 bytes / s. The 1 MB figure is the median of ``--repeat`` runs.
* **baselines on the same daemons**: ``iperf3`` TCP from A to C's overlay address (through both
  TUNs and the relay B) and ``ping -6`` RTT over the overlay.

Both the small and the bulk measurements run twice: over the Mycelium-compatible JSON path (payload
base64 in a JSON body / response) and over the raw path (``Content-Type: application/octet-stream``
request body with ``dst_pk`` in the query; ``Accept: application/octet-stream`` response with the
metadata in ``X-Hyphal-*`` headers). ``--modes`` picks them.

It prints a table with the ratios against the targets (bulk >= 0.5x overlay TCP, small p50 < 5 ms
over two hops); ``--json`` prints the results as JSON instead. Needs root (ip netns, TUN).

    sudo .venv/bin/python bench/messages.py [--json] [--bulk-sizes 1,100] [--small-count 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hyphal.testing.netlab import Node, Topology, TopologyError, has_route

# The clients (bench/clients/) run by path inside a namespace with this Python and PYTHONPATH;
# they talk to the API at 127.0.0.1:8989 there.
CLIENTS = Path(__file__).resolve().parent / "clients"


@dataclass
class Results:
    small_count: int = 0
    small_size: int = 0
    #: per mode ("json" / "raw"): latency p50 / p99 / mean, and p50 of the POST round trip alone
    #: (request -> 201 on the sender's API)
    small_p50_ms: dict[str, float] = field(default_factory=dict)
    small_p99_ms: dict[str, float] = field(default_factory=dict)
    small_mean_ms: dict[str, float] = field(default_factory=dict)
    small_post_p50_ms: dict[str, float] = field(default_factory=dict)
    ping_p50_ms: float | None = None
    ping_p99_ms: float | None = None
    bulk_mb_s: dict[str, float] = field(default_factory=dict)
    bulk_runs_s: dict[str, list[float]] = field(default_factory=dict)
    #: keys "<mode> <size>MB"; last run per size, split: POST answered / sender status "received" / GET body read
    bulk_phases_s: dict[str, dict[str, float]] = field(default_factory=dict)
    iperf_mb_s: float | None = None
    targets: dict[str, bool] = field(default_factory=dict)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def client_argv(client: str, *args: str) -> list[str]:
    return [sys.executable, str(CLIENTS / f"{client}.py"), *args]


def python_in(node: Node, client: str, *args: str, timeout: float = 300) -> str:
    result = node.exec(client_argv(client, *args), timeout=timeout)
    if result.returncode != 0:
        raise TopologyError(f"{node.name}: client failed:\n{result.stderr[-3000:]}")
    return result.stdout


def start_client(node: Node, client: str, log: str, *args: str) -> Path:
    """Start a client in the background; return its log path once it says 'ready'."""
    path = node.dir / log
    path.unlink(missing_ok=True)
    node.popen(client_argv(client, *args), log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists() and "ready" in path.read_text():
            time.sleep(0.2)  # let its first long poll reach the daemon
            return path
        time.sleep(0.05)
    raise TopologyError(f"{node.name}: client did not start: {path.read_text()}")


def wait_output(path: Path, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in reversed(path.read_text().splitlines()):
            if line.startswith(("[", "{")):
                return json.loads(line)
        time.sleep(0.05)
    raise TopologyError(f"no result in {path}: {path.read_text()[-2000:]}")


def drain(node: Node) -> None:
    while node.api("GET", "/api/v1/messages").status == 200:
        pass


def bench_small(topo: Topology, args: argparse.Namespace, res: Results, mode: str) -> None:
    a, c = topo.node("A"), topo.node("C")
    n = args.small_count
    # Warm-up (connections, route caches, e2e sessions) so the first sample is not an outlier.
    log = start_client(c, "small_receiver", f"small-warm-{mode}.log", "10", mode)
    python_in(a, "small_sender", c.public_key, "10", str(args.small_size), "0.01", mode)
    wait_output(log, 30)
    log = start_client(c, "small_receiver", f"small-{mode}.log", str(n), mode)
    sent = json.loads(
        python_in(
            a,
            "small_sender",
            c.public_key,
            str(n),
            str(args.small_size),
            str(args.small_interval),
            mode,
        )
    )
    codes = sent["codes"]
    res.small_post_p50_ms[mode] = round(statistics.median(sent["post"]) * 1000, 3)
    if set(codes) != {"201"}:
        raise TopologyError(f"small sends answered {codes}")
    lat = [x * 1000 for x in wait_output(log, 60)]
    if len(lat) != n:
        raise TopologyError(f"received {len(lat)} of {n} small messages")
    res.small_count, res.small_size = n, args.small_size
    res.small_p50_ms[mode] = round(statistics.median(lat), 3)
    res.small_p99_ms[mode] = round(pct(lat, 99), 3)
    res.small_mean_ms[mode] = round(statistics.fmean(lat), 3)


def bench_bulk_once(topo: Topology, size: int, mode: str) -> float:
    a, c = topo.node("A"), topo.node("C")
    log = start_client(c, "bulk_receiver", f"bulk-{mode}-{size}.log", mode)
    sent = json.loads(python_in(a, "bulk_sender", c.public_key, str(size), mode, timeout=600))
    if sent["status"] != 201:
        raise TopologyError(f"bulk POST answered {sent}")
    got = wait_output(log, 600)
    if got["status"] != 200 or got.get("sha") != sent["sha"] or got.get("len") != size:
        raise TopologyError(f"bulk message of {size} bytes arrived wrong: {got}")
    phases = {
        "api_post_s": sent["t_posted"] - sent["t0"],
        "bus_transfer_s": sent.get("t_received", got["t_headers"]) - sent["t_posted"],
        "api_get_s": got["t1"] - sent.get("t_received", got["t_headers"]),
    }
    key = f"{mode} {size / 1e6:g}MB"
    if key not in PHASES or phases["api_post_s"] + phases["bus_transfer_s"] > 0:
        PHASES[key] = {k: round(v, 3) for k, v in phases.items()}
    return float(got["t1"] - sent["t0"])


PHASES: dict[str, dict[str, float]] = {}


def bench_bulk(topo: Topology, args: argparse.Namespace, res: Results, mode: str) -> None:
    for mb in args.bulk_sizes:
        size = int(mb * 1_000_000)
        runs = args.repeat if size <= 10_000_000 else args.big_repeat
        times = [bench_bulk_once(topo, size, mode) for _ in range(runs)]
        key = f"{mode} {mb:g}MB"
        res.bulk_runs_s[key] = [round(t, 3) for t in times]
        res.bulk_mb_s[key] = round(size / 1e6 / statistics.median(times), 2)
        res.bulk_phases_s[key] = PHASES.get(key, {})


def bench_overlay(topo: Topology, args: argparse.Namespace, res: Results) -> None:
    a, c = topo.node("A"), topo.node("C")
    ping = a.exec(["ping", "-6", "-n", "-q", "-c", "3", "-i", "0.2", str(c.address)], timeout=20)
    if ping.returncode != 0:
        raise TopologyError(f"overlay ping A -> C failed: {ping.stdout}{ping.stderr}")
    out = a.exec(
        ["ping", "-6", "-n", "-c", str(args.pings), "-i", "0.05", str(c.address)], timeout=60
    ).stdout
    rtts = [float(x.split("time=")[1].split()[0]) for x in out.splitlines() if "time=" in x]
    if rtts:
        res.ping_p50_ms = round(statistics.median(rtts), 3)
        res.ping_p99_ms = round(pct(rtts, 99), 3)
    server = c.popen(["iperf3", "-s", "-1", "-B", str(c.address)], "iperf3-server.log")
    try:
        topo.wait_until(lambda: c.listening(5201), timeout=10, message="iperf3 server")
        result = a.exec(
            ["iperf3", "-c", str(c.address), "-t", str(args.iperf_seconds), "-O", "1", "-J"],
            timeout=args.iperf_seconds + 30,
        )
        data = json.loads(result.stdout)
        if "error" in data:
            raise TopologyError(f"iperf3: {data['error']}")
        res.iperf_mb_s = round(data["end"]["sum_received"]["bits_per_second"] / 8 / 1e6, 2)
    finally:
        if server.poll() is None:
            server.kill()


def fmt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.2f}{unit}"


def table(res: Results) -> str:
    rows: list[tuple[str, str, str, str]] = []
    one_way = res.ping_p50_ms / 2 if res.ping_p50_ms else None
    for mode, p50 in res.small_p50_ms.items():
        p99 = res.small_p99_ms[mode]
        rows.append(
            (
                f"small msg latency p50 ({res.small_size} B, {mode})",
                fmt(p50, " ms"),
                f"ping RTT p50 {fmt(res.ping_p50_ms, ' ms')}",
                f"{p50 / res.ping_p50_ms:.1f}x RTT" if res.ping_p50_ms else "n/a",
            )
        )
        rows.append(
            (
                f"small msg latency p99 ({mode})",
                fmt(p99, " ms"),
                f"ping RTT p99 {fmt(res.ping_p99_ms, ' ms')}",
                f"{p99 / res.ping_p99_ms:.1f}x RTT" if res.ping_p99_ms else "n/a",
            )
        )
    for key, mbs in res.bulk_mb_s.items():
        rows.append(
            (
                f"bulk {key} message",
                f"{mbs:.2f} MB/s",
                f"iperf3 TCP {fmt(res.iperf_mb_s, ' MB/s')}",
                f"{mbs / res.iperf_mb_s:.2f}x" if res.iperf_mb_s else "n/a",
            )
        )
    head = ("measurement (A -> B -> C)", "message bus via API", "overlay baseline", "ratio")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    for mode, post in res.small_post_p50_ms.items():
        lines.append(f"small msg ({mode}): POST -> 201 alone takes p50 {post:.2f} ms")
    for key, phases in res.bulk_phases_s.items():
        lines.append(
            f"bulk {key} split (s): API POST {phases.get('api_post_s')}, bus transfer "
            f"{phases.get('bus_transfer_s')}, API GET {phases.get('api_get_s')}"
        )
    if one_way is not None:
        lines.append(f"(one-way overlay latency ~ {one_way:.2f} ms = ping RTT / 2)")
    lines.append(
        "targets: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in res.targets.items())
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--small-count", type=int, default=200)
    parser.add_argument("--small-size", type=int, default=100, help="bytes (>= 8)")
    parser.add_argument("--small-interval", type=float, default=0.01, help="s between sends")
    parser.add_argument(
        "--bulk-sizes",
        type=lambda s: [float(x) for x in s.split(",") if x],
        default=[1.0, 100.0],
        help="comma-separated message sizes in MB (10^6 bytes)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per bulk size <= 10 MB")
    parser.add_argument("--big-repeat", type=int, default=1, help="runs per bulk size > 10 MB")
    parser.add_argument("--iperf-seconds", type=int, default=5)
    parser.add_argument("--pings", type=int, default=50)
    parser.add_argument(
        "--modes",
        type=lambda s: [m for m in s.split(",") if m],
        default=["json", "raw"],
        help="API paths to measure: json (base64 in JSON), raw (octet-stream)",
    )
    args = parser.parse_args(argv)
    if args.small_size < 8:
        parser.error("--small-size must be at least 8 (the timestamp)")

    res = Results()
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    with Topology.build("A-B B-C", tun=True, start=True) as topo:
        a, c = topo.node("A"), topo.node("C")
        topo.wait_until(lambda: has_route(a, c) and has_route(c, a), timeout=30, message="routes")
        log(f"3-node line up in {topo.workdir}; overlay A={a.address} C={c.address}")
        bench_overlay(topo, args, res)
        log(
            f"overlay: iperf3 {fmt(res.iperf_mb_s, ' MB/s')}, ping p50 {fmt(res.ping_p50_ms, ' ms')}"
        )
        for mode in args.modes:
            drain(c)
            bench_small(topo, args, res, mode)
            log(f"small ({mode}): p50 {res.small_p50_ms} ms, p99 {res.small_p99_ms} ms")
        for mode in args.modes:
            drain(c)
            bench_bulk(topo, args, res, mode)
            log(f"bulk ({mode}): {res.bulk_mb_s} (runs in s: {res.bulk_runs_s})")
    for mode, p50 in res.small_p50_ms.items():
        res.targets[f"small p50 < 5 ms ({mode})"] = p50 < 5.0
    if res.iperf_mb_s:
        for key, mbs in res.bulk_mb_s.items():
            res.targets[f"bulk {key} >= 0.5x TCP"] = mbs >= 0.5 * res.iperf_mb_s
    if args.json:
        print(json.dumps(asdict(res), indent=2))
    else:
        print()
        print(table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
