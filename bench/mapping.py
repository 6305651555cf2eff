"""Mapping-plane benchmark: one function per measurement, a main that runs those asked for.

- ``feeder``: targets/s the feeder hands out (claims of 1000 on a SQLite state, and the pure
  permutation alone) over a /12 worth of blocks, against the obvious baseline measured in the
  same run: materialise one address per /24 of the same space and ``random.shuffle`` it (what a
  non-lazy feeder does at every cycle), with the memory each needs.
- ``store``: results/s ``Store.ingest`` stores (batches of 500 traceroutes of 16 hops: results,
  hops, edges, ids) into SQLite and into a real PostgreSQL started for the run
  (``hyphal.testing.postgres``), same data, same run; the baseline per backend is inserting the
  same results as bare JSON rows (no normalisation, no idempotency).

- ``probes``: probes/s one worker process sends at CPU saturation, into the namespace lab
  (:mod:`hyphal.testing.maplab`): ICMP pings to 128 /24s that T answers, every cap lifted, for
  a few seconds; with the worker's CPU seconds. Baseline in the same run: scamper pinging the
  same targets at ``-p 10000``.
- ``trace``: wall time of one UDP traceroute W1 -> T across the lab (6 hops, one of them
  silent), ours (Paris; in-process engine and the ``hyphal map trace`` process) against
  ``traceroute`` (classic UDP, up to 16 probes in flight) and ``scamper`` (UDP-Paris), each with
  one probe per hop and 1 s waits, same path, same run.

    flock /tmp/hyphal-heavy.lock env PYTHONPATH=src .venv/bin/python bench/mapping.py \\
        [--only feeder,store] [--results 20000] [--json]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import secrets
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hyphal.mapping.db import Database
from hyphal.mapping.feeder.core import CycleView, host_key
from hyphal.mapping.feeder.prefixes import TargetFilter
from hyphal.mapping.feeder.space import TargetSpace
from hyphal.mapping.feeder.state import FeederState
from hyphal.mapping.model import Result, parse_result
from hyphal.mapping.store.backend import Store
from hyphal.testing.postgres import PgCluster, pg_bin

LAB = TargetFilter.build(exceptions=["198.18.0.0/15"])


def _timed(fn: Callable[[], int]) -> tuple[int, float]:
    start = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - start


def bench_feeder(targets: int = 50_000) -> dict[str, Any]:
    """Feeder targets/s: SQLite-backed claims, the pure order, and materialise+shuffle."""
    sources = ["8.0.0.0/12"]  # 4096 /24 blocks per cycle; the lazy space never expands it
    space = TargetSpace(sources, TargetFilter.build())
    out: dict[str, Any] = {"blocks": space.blocks}
    with tempfile.TemporaryDirectory() as tmp:
        state = FeederState(Database(str(Path(tmp) / "feeder.db")), space, LAB)

        def claims() -> int:
            n = 0
            while n < targets:
                n += len(state.claim("bench", 1000, time.time()).targets)
            return n

        n, dt = _timed(claims)
        out["claimsPerSecond"] = round(n / dt)
        state.db.close()
    view = CycleView(space, 1, b"k" * 32, space.blocks, lambda _seq: [], host_key(b"s", space))
    n, dt = _timed(lambda: sum(1 for p in range(min(targets, space.blocks)) if view.target(p)))
    out["permutationPerSecond"] = round(n / dt)
    tracemalloc.start()

    def shuffle() -> int:
        rnd = random.Random(1)
        listed: list[str] = []
        for cidr in sources:
            for block in ipaddress.ip_network(cidr).subnets(new_prefix=24):
                listed.append(str(block.network_address + rnd.randrange(256)))
        rnd.shuffle(listed)
        return len(listed)

    n, dt = _timed(shuffle)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out["baselineShufflePerSecond"] = round(n / dt)
    out["baselinePeakBytes"] = peak
    out["baselineNote"] = "materialise one address per /24 and shuffle: O(blocks) memory"
    return out


def _traces(n: int, hops: int = 16) -> list[Result]:
    rnd = random.Random(7)
    out = []
    for i in range(n):
        path = [f"198.18.{rnd.randrange(64)}.{rnd.randrange(1, 255)}" for _ in range(hops - 1)]
        target = f"198.19.{i // 250 % 256}.{i % 250 + 1}"
        out.append(parse_result({
            "id": secrets.token_hex(16), "type": "traceroute", "worker": f"w{i % 8}",
            "region": "lab", "target": target, "af": 4, "proto": "udp", "flowId": i % 16,
            "started": 1e9 + i, "ended": 1e9 + i + 2,
            "params": {"maxTtl": 32, "attempts": 3, "gapLimit": 5, "paris": True},
            "hops": [{"ttl": t + 1, "replies": [{"from": ip, "rtt": 1.0 + t, "replyTtl": 60,
                                                  "icmpType": 11, "icmpCode": 0, "quotedTtl": 1}]}
                     for t, ip in enumerate(path)]
            + [{"ttl": hops, "replies": [{"from": target, "rtt": 20.0, "icmpType": 3,
                                          "icmpCode": 3}]}],
            "destinationReplied": True, "stopReason": "completed",
        }))  # fmt: skip
    return out


def _ingest_rate(store: Store, results: list[Result], batch: int = 500) -> float:
    start = time.perf_counter()
    for i in range(0, len(results), batch):
        store.ingest(results[i : i + batch], time.time())
    return len(results) / (time.perf_counter() - start)


def _blob_rate(db: Database, results: list[Result], batch: int = 500) -> float:
    db.execute_script("CREATE TABLE blobs (id TEXT, raw TEXT)")
    start = time.perf_counter()
    for i in range(0, len(results), batch):
        with db.tx() as t:
            t.executemany(
                "INSERT INTO blobs (id, raw) VALUES (?, ?)",
                [(r.id, json.dumps(r.to_json())) for r in results[i : i + batch]],
            )
    return len(results) / (time.perf_counter() - start)


def bench_store(n: int = 20_000) -> dict[str, Any]:
    """Store inserts/s, SQLite vs PostgreSQL, with a bare-JSON baseline on each."""
    results = _traces(n)
    out: dict[str, Any] = {"results": n, "hopsPerResult": 16}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "store"))
        out["sqlite"] = round(_ingest_rate(store, results))
        store.close()
        blob = Database(str(Path(tmp) / "blob.db"))
        out["sqliteBaselineJson"] = round(_blob_rate(blob, results))
        blob.close()
    if pg_bin() is None:
        out["postgresql"] = "not installed"
        return out
    cluster = PgCluster()
    try:
        url = cluster.start()
        store = Store(url)
        out["postgresql"] = round(_ingest_rate(store, results))
        store.close()
        blob = Database(url)
        out["postgresqlBaselineJson"] = round(_blob_rate(blob, results))
        blob.close()
        out["postgresqlNote"] = "local cluster on a unix socket, fsync=off (like the tests)"
    finally:
        cluster.stop()
    return out


def _inner_probes(seconds: float) -> dict[str, Any]:
    """Run inside W1's namespace: ping 128 /24s with every cap lifted, count probes sent."""
    import asyncio
    import resource

    from hyphal.mapping.limits import Limiter, Limits
    from hyphal.mapping.probe.engine import Identity, measure
    from hyphal.mapping.probe.plan import PingParams

    limits = Limits(
        pps=10_000, burst=100, prefix_pps=10_000, prefix_burst=100, cooldown=0, max_concurrent=128
    )
    limiter = Limiter(limits, time.monotonic())
    ident = Identity("bench", "", "lab")
    targets = [f"198.19.{128 + i}.1" for i in range(128)]
    received = 0

    async def one(target: str, stop: float) -> None:
        nonlocal received
        while time.monotonic() < stop:
            r = await measure(
                "ping",
                target,
                "icmp",
                limiter,
                ident,
                ping=PingParams(count=20, interval=0.01, wait=1.0),
            )
            received += r["ping"]["received"]

    async def main() -> float:
        start = time.monotonic()
        await asyncio.gather(*(one(t, start + seconds) for t in targets))
        return time.monotonic() - start

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = asyncio.run(main())
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {"sent": limiter.sent, "received": received, "seconds": elapsed, "cpuSeconds": cpu}


def _in_ns(ns: str, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def bench_probes(seconds: float = 5.0) -> dict[str, Any]:
    from hyphal.testing.maplab import MapLab

    lab = MapLab.build()
    try:
        before = _count_echoes(lab)
        done = _in_ns(lab.ns("W1"), [sys.executable, __file__, "--inner-probes", str(seconds)])
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        ours = json.loads(done.stdout)
        ours["atTarget"] = _count_echoes(lab) - before
        targets = "\n".join(f"198.19.{128 + i}.1" for i in range(128)) + "\n"
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
            handle.write(targets * 20)  # 20 rounds of the 128 targets
        before = _count_echoes(lab)
        started = time.monotonic()
        sc = _in_ns(
            lab.ns("W1"),
            ["scamper", "-p", "10000", "-c", "ping -c 20 -i 0.01", "-O", "text", handle.name],
            timeout=300,
        )
        sc_elapsed = time.monotonic() - started
        Path(handle.name).unlink()
        sc_sent = _count_echoes(lab) - before
        return {
            "oursPps": round(ours["sent"] / ours["seconds"]),
            "oursPpsPerCpuSecond": round(ours["sent"] / max(ours["cpuSeconds"], 1e-9)),
            "oursAnswered": ours["received"],
            "oursAtTarget": ours["atTarget"],
            "scamperPps": round(sc_sent / sc_elapsed)
            if sc.returncode == 0
            else f"failed: {sc.stderr[-200:]}",
            "scamperEchoes": sc_sent,
        }
    finally:
        lab.close()


def _count_echoes(lab: Any) -> int:
    return int(lab.count("T", "IcmpInEchos"))


def bench_trace(rounds: int = 3) -> dict[str, Any]:
    from hyphal.testing.maplab import TARGET4, MapLab, local_trace_argv

    lab = MapLab.build()
    ns = lab.ns("W1")
    hyphal = local_trace_argv(TARGET4, "--proto", "udp", wait="1")
    tools = {
        "hyphalProcess": hyphal,
        "traceroute": ["traceroute", "-n", "-q", "1", "-w", "1", TARGET4],
        "scamper": ["scamper", "-c", "trace -P udp-paris -q 1 -w 1", "-O", "text", "-i", TARGET4],
    }
    try:
        out: dict[str, Any] = {}
        for name, argv in tools.items():
            times = []
            for _ in range(rounds):
                started = time.monotonic()
                done = _in_ns(ns, argv)
                times.append(time.monotonic() - started)
                if done.returncode != 0:
                    out[name] = f"failed: {done.stderr[-200:]}"
                    break
                if name == "hyphalProcess":
                    result = json.loads(done.stdout)
                    out["hyphalEngine"] = round(result["ended"] - result["started"], 3)
                    out["hyphalHops"] = len(result["hops"])
            else:
                out[name] = round(min(times), 3)
        return out
    finally:
        lab.close()


BENCHES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "feeder": lambda a: bench_feeder(a.targets),
    "store": lambda a: bench_store(a.results),
    "probes": lambda a: bench_probes(a.seconds),
    "trace": lambda a: bench_trace(),
}


def report(name: str, data: dict[str, Any]) -> str:
    if name == "feeder":
        return (
            f"feeder ({data['blocks']} blocks): claims {data['claimsPerSecond']:,} targets/s "
            f"(SQLite state), order alone {data['permutationPerSecond']:,}/s; baseline "
            f"materialise+shuffle {data['baselineShufflePerSecond']:,}/s using "
            f"{data['baselinePeakBytes'] / 1e6:.1f} MB (the lazy space: O(segments))"
        )
    if name == "store":
        pg = data["postgresql"]
        pg_text = (
            pg
            if isinstance(pg, str)
            else (f"{pg:,} results/s (bare JSON rows {data['postgresqlBaselineJson']:,}/s)")
        )
        return (
            f"store ({data['results']} traceroutes x {data['hopsPerResult']} hops, batches of "
            f"500): SQLite {data['sqlite']:,} results/s (bare JSON rows "
            f"{data['sqliteBaselineJson']:,}/s); PostgreSQL {pg_text}"
        )
    if name == "probes":
        return (
            f"probes: one worker sends {data['oursPps']:,} probes/s at CPU saturation "
            f"({data['oursPpsPerCpuSecond']:,} per CPU second; {data['oursAtTarget']:,} counted at "
            f"the target); scamper -p 10000 on the same targets: {data['scamperPps']} probes/s"
        )
    if name == "trace":
        return (
            f"trace W1->T ({data.get('hyphalHops')} hops, one silent, 1 s waits): hyphal engine "
            f"{data.get('hyphalEngine')} s, hyphal map trace process {data.get('hyphalProcess')} s; "
            f"traceroute {data.get('traceroute')} s; scamper {data.get('scamper')} s"
        )
    return f"{name}: {data}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", default=",".join(BENCHES), help="comma-separated: " + ", ".join(BENCHES)
    )
    parser.add_argument("--targets", type=int, default=50_000, help="feeder: targets to claim")
    parser.add_argument("--results", type=int, default=20_000, help="store: results to ingest")
    parser.add_argument("--seconds", type=float, default=5.0, help="probes: seconds to run")
    parser.add_argument("--inner-probes", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    if args.inner_probes is not None:
        print(json.dumps(_inner_probes(args.inner_probes)))
        return 0
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    found = {name: BENCHES[name](args) for name in wanted}
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        for name, data in found.items():
            print(report(name, data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
