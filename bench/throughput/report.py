"""The throughput report: the table of systems (rich when installed, else plain) and the notes,
per-system details and profile summaries printed under it."""

from __future__ import annotations

import statistics
from typing import Any

from .measure import cpu_count
from .results import LABELS, Iperf, SystemResult


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def spread(runs: list[Iperf]) -> str:
    if not runs:
        return "-"
    vals = [r.gbps for r in runs]
    if len(vals) == 1:
        return f"{vals[0]:.2f}"
    return f"{statistics.median(vals):.2f} ({min(vals):.2f}-{max(vals):.2f})"


def table_rows(results: list[SystemResult]) -> tuple[list[str], list[list[str]]]:
    base = next((r for r in results if r.system == "veth" and r.status == "ok"), None)
    headers = [
        "system",
        "Gbit/s 1-stream",
        "Gbit/s 4-stream",
        "RTT avg ms",
        "p50/p99 ms",
        "1-str % veth",
        "4-str % veth",
        "added RTT ms",
        "MTU",
        "daemon CPU % A/B (1-str)",
        "Gbit/s per daemon core",
        "retrans 1-str",
    ]
    rows = []
    for r in results:
        if r.status != "ok":
            rows.append([LABELS[r.system], r.status, *[""] * 7, r.note, "", ""])
            continue

        def ratio(ours: float | None, theirs: float | None) -> str:
            if ours is None or not theirs:
                return "-"
            return f"{100 * ours / theirs:.0f}%"

        rtt = r.rtt
        added = (
            rtt.avg_ms - base.rtt.avg_ms
            if base
            and base.rtt
            and rtt
            and rtt.avg_ms is not None
            and base.rtt.avg_ms is not None
            and r is not base
            else None
        )
        cpu = "-"
        if r.cpu and r.cpu.daemons:
            cpu = " / ".join(f"{d['total']:.0f}" for d in r.cpu.daemons.values())
        cores = sum(d["total"] for d in r.cpu.daemons.values()) / 100 if r.cpu else 0.0
        per_core = fmt(r.gbps1 / cores) if r.gbps1 is not None and cores > 0 else "-"
        retrans = [x.retransmits for x in r.tcp1 if x.retransmits is not None]
        rows.append(
            [
                LABELS[r.system],
                spread(r.tcp1),
                spread(r.tcp4),
                fmt(rtt.avg_ms if rtt else None, 3),
                f"{fmt(rtt.p50_ms if rtt else None, 3)}/{fmt(rtt.p99_ms if rtt else None, 3)}",
                ratio(r.gbps1, base.gbps1 if base else None) if r is not base else "100%",
                ratio(r.gbps4, base.gbps4 if base else None) if r is not base else "100%",
                fmt(added, 3),
                str(r.mtu or "-"),
                cpu,
                per_core,
                str(int(statistics.median(retrans))) if retrans else "-",
            ]
        )
    return headers, rows


def print_report(report: dict[str, Any], results: list[SystemResult]) -> None:
    headers, rows = table_rows(results)
    print(report["header_line"])
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    else:
        table = Table(
            title=f"TUN data plane, iperf3 -t {report['args']['time']} x "
            f"{report['args']['repeat']} (median (min-max)), ping -6 x "
            f"{report['args']['pings']}"
        )
        for i, h in enumerate(headers):
            table.add_column(h, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        Console(width=200).print(table)
    for r in results:
        extra = []
        if r.version:
            extra.append(r.version)
        if r.setup_seconds is not None:
            extra.append(f"ready in {r.setup_seconds:.1f} s")
        if r.tcp1 and r.tcp1[0].mss:
            extra.append(f"MSS {r.tcp1[0].mss}")
        if r.cpu and r.cpu.daemons:
            extra.append(
                "CPU 1-str "
                + ", ".join(
                    f"{k} u{v['user']:.0f}/s{v['sys']:.0f}" for k, v in r.cpu.daemons.items()
                )
            )
        if r.cpu and r.cpu.machine_busy_pct is not None:
            extra.append(f"machine busy {r.cpu.machine_busy_pct:.0f}% of {100 * cpu_count()}%")
        if r.note and r.status == "ok":
            extra.append(r.note)
        if extra:
            print(f"  {LABELS[r.system]}: " + "; ".join(extra))
    by = {r.system: r for r in results if r.status == "ok"}
    hy, ygg = by.get("hyphal"), by.get("yggdrasil")
    if hy and ygg and hy.gbps1 and ygg.gbps1:
        print(f"  hyphal / yggdrasil single stream: {hy.gbps1 / ygg.gbps1:.2f}x (target >= 2x)")
    prof = report.get("profile")
    if prof:
        print(f"\nprofile: profiled single-stream run {prof['profiled_tcp1']['gbps']:.2f} Gbit/s")
        mode = "Python + native frames" if report["args"]["native"] else "Python frames"
        for p in prof["profiles"]:
            busy = 100 * p["samples"] / max(1, p["expected_samples"])
            print(
                f"\n{p['role']} daemon ({mode}): {p['samples']} non-idle samples of "
                f"~{p['expected_samples']} (~{busy:.0f}% busy); raw {p['raw_file']}"
                + (f", flame graph {p['svg_file']}" if p["svg_file"] else "")
            )
            print(f"  top {len(p['top_functions'])} functions by own time (% of samples):")
            for name, count, pct in p["top_functions"]:
                print(f"    {pct:5.1f}%  {count:6d}  {name}")
            print("  top lines by own time:")
            for name, count, pct in p["top_lines"]:
                print(f"    {pct:5.1f}%  {count:6d}  {name}")
            if p["categories"]:
                print("  own time by kind of work:")
                for name, count, pct in p["categories"]:
                    print(f"    {pct:5.1f}%  {count:6d}  {name}")
