"""The CLI entry and the orchestration: arguments, the namespace pair, each system's driver in
turn, cleanup on every exit path, and the JSON file plus the printed report."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from hyphal.testing.netlab import TopologyError

from . import __doc__ as PACKAGE_DOC
from .lab import Pair
from .measure import cpu_count
from .profile import REPO, RESULTS
from .report import print_report
from .results import SYSTEMS, BenchError, SystemResult
from .systems import RUNNERS

DESCRIPTION = (PACKAGE_DOC or "").split("\n\n")[0]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--time", type=int, default=10, help="seconds per iperf3 run (10)")
    parser.add_argument("--repeat", type=int, default=1, help="iperf3 runs per cell (1)")
    parser.add_argument("--pings", type=int, default=50, help="pings after warm-up (50)")
    parser.add_argument("--ping-interval", type=float, default=0.05, help="seconds (0.05)")
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated subset of {','.join(SYSTEMS)} (all)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy both hyphal daemons in an extra single-stream run",
    )
    parser.add_argument(
        "--native",
        action="store_true",
        help="--profile: also unwind C frames (uvloop, OpenSSL, libc); pauses the daemons per sample",
    )
    parser.add_argument("--top", type=int, default=15, help="profile rows to print (15)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep daemon logs in bench/results/logs-<stamp>/"
    )
    args = parser.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    if "veth" not in args.systems:
        args.systems.insert(0, "veth")  # the ratios need the baseline measured in the same run
    args.profile_result = None
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench.throughput needs root (network namespaces, TUN devices)", file=sys.stderr)
        return 2
    for tool in ("ip", "iperf3", "ping", "curl", "ss"):
        if shutil.which(tool) is None:
            print(f"missing {tool}; run ./scripts/setup.sh as root", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="hyphal-bench-"))
    pair: Pair | None = None
    load = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    header = (
        f"hyphal throughput bench {started}  host {platform.node()}  kernel "
        f"{platform.release()}  cpus {cpu_count()}  loadavg {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}"
    )
    results: list[SystemResult] = []
    try:
        pair = Pair.build(workdir)
        header += f"  netns {pair.a.ns}/{pair.b.ns}"
        if not args.json:
            print(header, flush=True)
        for system in args.systems:
            if not args.json:
                print(f"... {system}", file=sys.stderr, flush=True)
            try:
                results.append(RUNNERS[system](pair, args))
            except (BenchError, TopologyError, subprocess.SubprocessError, OSError) as exc:
                # The first line says what failed; the logs (kept below) have the rest.
                note = (str(exc).splitlines() or [""])[0]
                results.append(SystemResult(system, status="failed", note=note))
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        if pair is not None:
            pair.close()
        return 130
    finally:
        if args.keep_logs or any(r.status == "failed" for r in results):
            keep = RESULTS / f"logs-{time.strftime('%Y%m%d-%H%M%S')}"
            keep.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.copytree(workdir, keep)
                print(f"logs kept in {keep.relative_to(REPO)}", file=sys.stderr)
        if pair is not None:
            pair.close()
        shutil.rmtree(workdir, ignore_errors=True)
    end_load = os.getloadavg()
    report: dict[str, Any] = {
        "header_line": header + f"  (loadavg at end {end_load[0]:.2f})",
        "started": started,
        "host": {
            "kernel": platform.release(),
            "cpus": cpu_count(),
            "loadavg_start": load,
            "loadavg_end": end_load,
        },
        "args": {k: v for k, v in vars(args).items() if k != "profile_result"},
        "results": [
            {**asdict(r), "gbps1_median": r.gbps1, "gbps4_median": r.gbps4} for r in results
        ],
    }
    if args.profile_result:
        report["profile"] = {
            "profiled_tcp1": args.profile_result["profiled_tcp1"],
            "profiles": [asdict(p) for p in args.profile_result["profiles"]],
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"throughput-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report, results)
        print(f"\nJSON: {out.relative_to(REPO)}")
    return 0 if all(r.status != "failed" for r in results) else 1
