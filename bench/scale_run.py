"""Scale benchmark of the real router in the simulator: one table over sizes, degrees and code.

Two roles in one file:

* the **driver** (default) runs one *row* per (code, nodes, degree) as a subprocess with
  ``PYTHONPATH`` set to that code's ``src`` (so the old code of a temporary git worktree runs
  the same measurement), watches the row's process group's memory (PSS, forks included) and
  kills it above ``--mem-limit``, skips rows whose memory, extrapolated from a smaller row of
  the same code, would not fit, then prints one table and writes JSON per row;
* a **row** (``--row``) cold-starts one geo network, measures the idle load and router memory,
  then forks once per failure (random node, busiest node) so both play from the same warm-up
  on the two cores (``--sequential``: one process, busiest after random).

``bench/scale.sh`` is the wrapper (old code via ``--compare REV``). By hand:

    PYTHONPATH=src python bench/scale_run.py --side new=src --nodes 300 --degree 3
    python bench/scale_run.py --table bench/results/scale-*.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

Row = dict[str, Any]

EVENTS = ("random", "busiest")
NO_POOL = "-nopool"
"""Label suffix of a side run with the simulator's announcement pool off (``--no-pool-too``)."""
POLL_S = 1.0


# ------------------------------------------------------------------------------------ memory


def _status_kb(pid: int | str, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            pids.append(int(entry))
    return pids


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


# ------------------------------------------------------------------------------------ row


def _cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def _event(run: Any, kind: str, window: float, at: float) -> Row:
    """Kill a node (random or busiest) at ``at`` on the warm network and watch ``window`` s."""
    from hyphal.sim.metrics import convergence_times, percentile
    from hyphal.sim.scenarios import _Window

    sim = run.sim
    wall0, cpu0 = time.perf_counter(), _cpu_s()
    if at > sim.now:
        sim.run_until(at)
    victim = run._busiest() if kind == "busiest" else run._pick_random()
    degree = sum(1 for lk in sim.links if lk.up and victim in (lk.a, lk.b))
    win = _Window(f"{kind} node dies", sim.now)
    sent = [sim.total_sent()[1]]
    sim.kill_node(victim)
    run._sample(win)
    dt = run.sample_dt
    steps = max(1, math.ceil(window / dt - 1e-9))
    start = sim.now
    last = None
    for k in range(1, steps + 1):
        sim.run_until(start + k * dt)
        last = run._sample(win, stretch=(k == steps))
        sent.append(sim.total_sent()[1])
    conv, affected = convergence_times(win.at, win.states)
    alive = max(1, len(sim.alive_indices()))
    per_s = max(1, round(1.0 / dt))
    rates = [(sent[i + per_s] - sent[i]) / alive / (per_s * dt) for i in range(len(sent) - per_s)]
    peak = max(rates, default=float("nan"))
    return {
        "event": kind,
        "at": win.at,
        "victim": victim,
        "victimDegree": degree,
        "affected": affected,
        "convMedian": percentile(conv, 50),
        "convP99": percentile(conv, 99),
        "convMax": float(conv.max()),
        "unconverged": int((~(conv < float("inf"))).sum()),
        "loops": max(s.loops for s in win.samples),
        "minReach": min(s.reach_fraction for s in win.samples),
        "stretchP50": getattr(last, "stretch_p50", None),
        "stretchP99": getattr(last, "stretch_p99", None),
        "stretchMax": getattr(last, "stretch_max", None),
        "ctlBytesPerNodeS": (sent[-1] - sent[0]) / alive / (sim.now - win.at),
        "ctlPeakBytesPerNodeS": peak,
        "wall": time.perf_counter() - wall0,
        "cpu": _cpu_s() - cpu0,
        "maxRssKb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def _forked(run: Any, kind: str, window: float, at: float) -> tuple[int, int]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            doc = json.dumps(_event(run, kind, window, at)).encode()
        except BaseException as exc:  # report, never fall back into the parent's code
            doc = json.dumps({"event": kind, "error": repr(exc)}).encode()
        while doc:
            doc = doc[os.write(w, doc) :]
        os._exit(0)
    os.close(w)
    return pid, r


def _collect(pid: int, r: int) -> Row:
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks)) if chunks else {"error": "no result"}


def run_row(args: argparse.Namespace) -> Row:
    import numpy as np

    from hyphal.sim import topologies
    from hyphal.sim.metrics import percentile, router_memory
    from hyphal.sim.scenarios import Run

    t0, c0 = time.perf_counter(), _cpu_s()
    top = topologies.geo(args.nodes, args.degree, args.seed)
    # only when asked: older code (``--compare``) has no such parameter
    pool: dict[str, Any] = {"share_announcements": False} if args.no_pool else {}
    run = Run(top, "node-failure", seed=args.seed, window=args.window, warmup=args.warmup, **pool)
    base_kb = _status_kb("self", "VmRSS")
    print(f"[{args.label} {args.nodes}/{args.degree}] cold start ...", file=sys.stderr, flush=True)
    run.warm()
    sim = run.sim
    cold = run.events[0]
    warm_bytes = sim.total_sent()[1]
    warm_sim = sim.now
    warm_wall, warm_cpu = time.perf_counter() - t0, _cpu_s() - c0
    print(
        f"[{args.label} {args.nodes}/{args.degree}] warm at t={warm_sim:.1f} s after "
        f"{warm_wall:.0f} s wall, {warm_cpu:.0f} s CPU",
        file=sys.stderr,
        flush=True,
    )
    # Idle load (hellos and IHUs; the first periodic dump is ~27 s after boot) and steady state.
    before = sim.total_sent()[1]
    sim.run_until(sim.now + args.idle)
    idle = (sim.total_sent()[1] - before) / max(1, len(sim.alive_indices())) / args.idle
    steady, _ = run.meter.sample(stretch=True, tables=True)
    alive = sim.alive_indices()
    mem_nodes = alive[:: max(1, len(alive) // 8)][:8]
    mem = router_memory(sim, mem_nodes)
    warm_kb = _status_kb("self", "VmHWM")
    at = max(sim.now, args.death_at or 0.0)
    events: list[Row] = []
    if args.sequential:
        for kind in EVENTS:
            events.append(_event(run, kind, args.window, sim.now if kind != "random" else at))
    else:
        pending = [_forked(run, kind, args.window, at) for kind in EVENTS]
        events = [_collect(pid, r) for pid, r in pending]
    conv = np.asarray([cold.conv_median, cold.conv_p99, cold.conv_max])
    return {
        "label": args.label,
        "nodes": args.nodes,
        "degree": args.degree,
        "links": len(top.edges),
        "seed": args.seed,
        "fits": True,
        "mode": "sequential" if args.sequential else "fork",
        "warmupSim": warm_sim,
        "warmupWall": warm_wall,
        "warmupCpu": warm_cpu,
        "coldConv": [float(x) for x in conv],
        "coldUnconverged": cold.unconverged,
        "coldLoops": cold.max_loops,
        "coldBytesPerNodeS": warm_bytes / args.nodes / max(warm_sim, 1e-9),
        "idleBytesPerNodeS": idle,
        "steadyStretch": [steady.stretch_p50, steady.stretch_p99, steady.stretch_max],
        "tableEntries": steady.table_entries_max,
        "memoryPerNode": mem,
        "memoryPerRouterPrefix": mem / args.nodes,
        "baseRssKb": base_kb,
        "warmRssKb": warm_kb,
        "signatureChecks": sim.verifier.calls,
        "events": events,
        "rowWall": time.perf_counter() - t0,
        "rowCpu": _cpu_s() - c0 + _cpu_s(resource.RUSAGE_CHILDREN),
        "destinations": len(run.meter.dests),
        "sampleDt": run.sample_dt,
        "percentileMethod": percentile.__name__,
    }


# ------------------------------------------------------------------------------------ driver


def _estimate(prior: list[Row], n: int, degree: int) -> tuple[float, float, float, int] | None:
    """(tree peak, single-process peak, CPU s) extrapolated to ``n`` nodes from the largest
    smaller row of the same code and degree that ran, as base + (measured - base) * (n / n0)^2."""
    ran = [
        d
        for d in prior
        if d.get("fits") and d.get("peakPssKb") and d["nodes"] < n and d["degree"] == degree
    ]
    if not ran:
        return None
    d = max(ran, key=lambda x: x["nodes"])
    scale = (n / d["nodes"]) ** 2
    base = d["baseRssKb"] * 1024
    tree = base + (d["peakPssKb"] * 1024 - base) * scale
    single = base + (d["warmRssKb"] * 1024 - base) * scale
    return tree, single, d["rowCpu"] * scale, d["nodes"]


def drive_row(
    py: str, src: str, label: str, n: int, degree: int, args: argparse.Namespace, prior: list[Row]
) -> Row:
    limit = args.mem_limit * 1e9 if args.mem_limit else 0.85 * mem_available()
    est = _estimate(prior, n, degree)
    sequential = args.sequential
    note = ""
    if est is not None:
        tree, single, cpu, n0 = est
        if tree > limit and single <= limit:
            sequential = True
            note = f"sequential: forks need ~{tree / 1e9:.1f} GB (from {n0})"
        elif single > limit:
            return {
                "label": label,
                "nodes": n,
                "degree": degree,
                "fits": False,
                "note": f"does not fit: ~{single / 1e9:.1f} GB needed, {limit / 1e9:.1f} GB "
                f"allowed (from the {n0}-node row); row ~{cpu / 60:.0f} min CPU",
                "estimatedBytes": single,
                "estimatedCpu": cpu,
            }
    out = Path(args.out)
    path = out / f"scale-{label}-{n}-d{degree}.json"
    cmd = [
        py,
        __file__,
        "--row",
        "--label",
        label,
        "--nodes",
        str(n),
        "--degree",
        str(degree),
        "--seed",
        str(args.seed),
        "--warmup",
        str(args.warmup),
        "--window",
        str(args.window),
        "--idle",
        str(args.idle),
        "--row-out",
        str(path),
    ]
    if args.death_at:
        cmd += ["--death-at", str(args.death_at)]
    if label.endswith(NO_POOL):
        cmd.append("--no-pool")
    if sequential:
        cmd.append("--sequential")
    env = dict(os.environ, PYTHONPATH=src)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    peak = 0
    killed = ""
    while proc.poll() is None:
        pss = sum(_pss_kb(p) for p in _group_pids(proc.pid))
        peak = max(peak, pss)
        if pss * 1024 > limit:
            killed = f"does not fit: {pss / 1e6:.1f} GB > {limit / 1e9:.1f} GB allowed; stopped"
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        time.sleep(POLL_S)
    wall = time.perf_counter() - t0
    if killed or proc.returncode != 0 or not path.exists():
        return {
            "label": label,
            "nodes": n,
            "degree": degree,
            "fits": False,
            "note": killed or f"row failed (exit {proc.returncode})",
            "peakPssKb": peak,
            "rowWall": wall,
        }
    doc: Row = json.loads(path.read_text())
    doc.update(peakPssKb=peak, driverWall=wall, note=note)
    path.write_text(json.dumps(doc, indent=1))
    return doc


# ------------------------------------------------------------------------------------ table


def _f(x: object, digits: int = 1) -> str:
    if not isinstance(x, (int, float)) or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "inf"
    return f"{x:.{digits}f}"


def _triple(xs: list[object], digits: int = 1) -> str:
    return " / ".join(_f(x, digits) for x in xs)


def table(rows: list[Row]) -> str:
    head = [
        "code",
        "nodes",
        "deg",
        "links",
        "cold start p99 / max (s)",
        "random death med / p99 / max (s)",
        "busiest death med / p99 / max (s)",
        "not conv.",
        "loops",
        "stretch p50 / p99 / max",
        "ctl B/node/s idle / cold / fail peak",
        "mem/node",
        "peak PSS",
        "wall warm + events (s)",
        "CPU (s)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d in rows:
        if not d.get("fits"):
            lines.append(
                f"| {d['label']} | {d['nodes']} | {d['degree']} | | {d.get('note', '')} |"
                + " |" * (len(head) - 5)
            )
            continue
        ev = {e.get("event"): e for e in d["events"]}
        rnd, bus = ev.get("random", {}), ev.get("busiest", {})

        def conv(e: Row) -> str:
            if "error" in e or not e:
                return f"error: {e.get('error', 'missing')}"
            return _triple([e["convMedian"], e["convP99"], e["convMax"]])

        evs = [e for e in (rnd, bus) if "convMax" in e]
        unconv = d["coldUnconverged"] + sum(e["unconverged"] for e in evs)
        loops = max([d["coldLoops"], *(e["loops"] for e in evs)])
        stretch = d["steadyStretch"]
        peak = max((e["ctlPeakBytesPerNodeS"] for e in evs), default=float("nan"))
        ev_wall = max((e.get("wall", 0.0) for e in evs), default=0.0)
        if d.get("mode") == "sequential":
            ev_wall = sum(e.get("wall", 0.0) for e in evs)
        cells = [
            d["label"],
            str(d["nodes"]),
            str(d["degree"]),
            str(d["links"]),
            _triple(d["coldConv"][1:]),
            conv(rnd),
            conv(bus),
            str(unconv),
            str(loops),
            _triple(stretch, 3),
            f"{d['idleBytesPerNodeS']:.0f} / {d['coldBytesPerNodeS']:.0f} / {_f(peak, 0)}",
            f"{d['memoryPerNode'] / 1e6:.2f} MB",
            f"{d.get('peakPssKb', 0) / 1e6:.2f} GB",
            f"{d['warmupWall']:.0f} + {ev_wall:.0f}",
            f"{d['rowCpu']:.0f}",
        ]
        if d.get("note"):
            cells[-1] += f" ({d['note']})"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument(
        "--side",
        action="append",
        default=[],
        metavar="LABEL=SRC",
        help="code to measure: a label and its src directory (repeat: old=/tmp/x/src new=src)",
    )
    ap.add_argument("--nodes", type=int, action="append", default=[], help="size (repeat)")
    ap.add_argument("--degree", type=int, action="append", default=[], help="degree (repeat)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=float, default=8.0, help="cold-start window, simulated s")
    ap.add_argument("--window", type=float, default=8.0, help="window after each death, s")
    ap.add_argument("--idle", type=float, default=2.0, help="idle-load window after warm-up, s")
    ap.add_argument(
        "--death-at", type=float, default=0.0, help="simulated time of the deaths (default: warm)"
    )
    ap.add_argument("--sequential", action="store_true", help="no forks: busiest after random")
    ap.add_argument(
        "--mem-limit", type=float, default=0.0, help="GB for a row (default 85%% of MemAvailable)"
    )
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument("--python", default=sys.executable, help="interpreter for the rows")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON, not a table")
    ap.add_argument("--table", type=Path, nargs="*", help="print the table of saved rows")
    ap.add_argument(
        "--no-pool-too",
        action="store_true",
        help=f"also run each side with its routers' announcement pool off (label +{NO_POOL[1:]}):"
        "\nwhat the pool saves the simulator's process",
    )
    ap.add_argument("--no-pool", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--row", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--label", default="new", help=argparse.SUPPRESS)
    ap.add_argument("--row-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.table is not None:
        print(table([json.loads(p.read_text()) for p in args.table]))
        return
    if args.row:
        args.nodes, args.degree = args.nodes[0], args.degree[0]
        doc = run_row(args)
        args.row_out.write_text(json.dumps(doc, indent=1))
        return
    sides = [s.split("=", 1) for s in args.side] or [["new", "src"]]
    if args.no_pool_too:
        sides += [[label + NO_POOL, src] for label, src in sides]
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    for n in sorted(args.nodes or [300]):
        for degree in args.degree or [3]:
            for label, src in sides:
                prior = [d for d in rows if d["label"] == label]
                t0 = time.perf_counter()
                doc = drive_row(args.python, src, label, n, degree, args, prior)
                doc["rev"] = os.environ.get(f"REV_{label.removesuffix(NO_POOL).upper()}", "")
                rows.append(doc)
                (args.out / f"scale-{label}-{n}-d{degree}.json").write_text(json.dumps(doc))
                print(
                    f"[{label} {n}/{degree}] row done in {time.perf_counter() - t0:.0f} s: "
                    f"{doc.get('note') or 'ok'}",
                    file=sys.stderr,
                    flush=True,
                )
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(table(rows))


if __name__ == "__main__":
    main()
