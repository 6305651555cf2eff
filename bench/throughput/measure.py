"""Measurements from A to B: ping RTT, iperf3 runs, and the endpoint daemons' CPU."""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from pathlib import Path

from .lab import Pair
from .results import BenchError, Cpu, Iperf, Rtt, SystemResult

IPERF_PORT = 5201
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_count() -> int:
    return os.cpu_count() or 1


def measure_ping(pair: Pair, addr: str, count: int, interval: float) -> Rtt:
    pair.a.exec(["ping", "-6", "-c", "10", "-i", "0.05", "-q", addr])  # warm-up
    out = pair.a.exec(
        ["ping", "-6", "-c", str(count), "-i", str(interval), "-W", "2", addr],
        timeout=count * interval + 30,
    ).stdout
    times = sorted(float(m) for m in re.findall(r"time=([\d.]+) ms", out))
    if not times:
        return Rtt(count, 0, None, None, None, None, None)

    def pct(p: float) -> float:
        return times[min(len(times) - 1, round(p / 100 * (len(times) - 1)))]

    return Rtt(count, len(times), statistics.fmean(times), pct(50), pct(99), times[0], times[-1])


def measure_iperf(pair: Pair, addr: str, streams: int, seconds: int) -> Iperf:
    """One iperf3 run A -> B against a fresh one-off server (no state left from a failed run)."""
    server = pair.b.popen(["iperf3", "-s", "-1", "-p", str(IPERF_PORT)], "iperf3.log")
    try:
        pair.wait(lambda: pair.b.listening(IPERF_PORT), 10, "iperf3 server", 0.05)
        return _iperf_client(pair, addr, streams, seconds)
    finally:
        pair.stop(server)


def _iperf_client(pair: Pair, addr: str, streams: int, seconds: int) -> Iperf:
    argv = [
        "iperf3",
        "-c",
        addr,
        "-p",
        str(IPERF_PORT),
        "-t",
        str(seconds),
        "-J",
        "-P",
        str(streams),
        "--connect-timeout",
        "3000",
    ]
    proc = pair.a.exec(argv, timeout=seconds + 40)
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise BenchError(f"iperf3 gave no JSON: {(proc.stderr or proc.stdout)[-300:]}") from exc
    if "error" in data:
        raise BenchError(f"iperf3: {data['error']}")
    end = data["end"]
    return Iperf(
        gbps=end["sum_received"]["bits_per_second"] / 1e9,
        retransmits=end.get("sum_sent", {}).get("retransmits"),
        mss=data.get("start", {}).get("tcp_mss_default"),
        seconds=end["sum_received"].get("seconds", seconds),
    )


def proc_ticks(pid: int) -> tuple[int, int] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]), int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def machine_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def measure(
    pair: Pair,
    result: SystemResult,
    addr: str,
    args: argparse.Namespace,
    daemons: dict[str, int] | None = None,
) -> None:
    """Ping, then ``--repeat`` single-stream and 4-stream iperf3 runs, with CPU for 1-stream."""
    result.address = addr
    result.rtt = measure_ping(pair, addr, args.pings, args.ping_interval)
    if result.rtt.received == 0:
        raise BenchError(f"no ping reply from {addr}")
    daemons = daemons or {}
    busy_total = 0
    all_total = 0
    ticks: dict[str, list[int]] = {name: [0, 0] for name in daemons}
    wall = 0.0
    for _ in range(args.repeat):
        before = {name: proc_ticks(pid) for name, pid in daemons.items()}
        m_before = machine_ticks()
        t0 = time.monotonic()
        result.tcp1.append(measure_iperf(pair, addr, 1, args.time))
        wall += time.monotonic() - t0
        m_after = machine_ticks()
        busy_total += m_after[0] - m_before[0]
        all_total += m_after[1] - m_before[1]
        for name, pid in daemons.items():
            b, a = before[name], proc_ticks(pid)
            if a is not None and b is not None:
                ticks[name][0] += a[0] - b[0]
                ticks[name][1] += a[1] - b[1]
    for _ in range(args.repeat):
        result.tcp4.append(measure_iperf(pair, addr, 4, args.time))
    cpu = Cpu(machine_busy_pct=100 * cpu_count() * busy_total / max(1, all_total))
    for name, (user, system) in ticks.items():
        scale = 100 / (CLK_TCK * wall)
        cpu.daemons[name] = {
            "user": round(user * scale, 1),
            "sys": round(system * scale, 1),
            "total": round((user + system) * scale, 1),
        }
    result.cpu = cpu
