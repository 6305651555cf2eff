"""The ``hyphal sim`` command: run a scenario on real routers and print what happened.

Mount it on the CLI app with ``app.command("sim")(sim)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hyphal.sim.scenarios import SCENARIOS, Run, RunResult
from hyphal.sim.topologies import TOPOLOGIES, TopologyError, build


def _num(x: float | None, digits: int = 2, unit: str = "") -> str:
    if x is None or math.isnan(x):
        return "-"
    if math.isinf(x):
        return "never"
    return f"{x:.{digits}f}{unit}"


def _kb(rate: float | None) -> str:
    return "-" if rate is None else f"{rate / 1000:.2f}"


def result_to_json(result: RunResult) -> str:
    """The whole result (samples included) as JSON; ``inf``/``nan`` become null."""

    def clean(obj: object) -> object:
        if isinstance(obj, float) and not math.isfinite(obj):
            return None
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj

    return json.dumps(clean(dataclasses.asdict(result)), indent=1)


def summary_tables(result: RunResult) -> list[Table]:
    head = Table(title=f"hyphal sim: {result.scenario} on {result.topology}", show_header=False)
    head.add_column("what")
    head.add_column("value")
    final = result.final
    rows = [
        ("nodes / links", f"{result.nodes} / {result.links}"),
        ("simulated / wall time", f"{result.sim_time:.1f} s / {result.wall_time:.1f} s"),
        (
            "destinations per sample",
            f"{result.destinations} (every {result.sample_dt:g} s simulated)",
        ),
        ("forwarding loops (max over samples)", str(result.max_loops)),
        ("routed pairs at the end", f"{final.routed}/{final.pairs} ({final.reach_fraction:.4%})"),
        (
            "stretch p50 / p99 / max (end)",
            f"{_num(final.stretch_p50, 3)} / {_num(final.stretch_p99, 3)} / "
            f"{_num(final.stretch_max, 3)}",
        ),
        (
            "control traffic per node",
            f"{result.control_msgs_per_node_s:.1f} msg/s, "
            f"{result.control_bytes_per_node_s / 1000:.1f} kB/s over the run, "
            f"{result.steady_bytes_per_node_s / 1000:.2f} kB/s idle",
        ),
        (
            "cold-start update TLVs (sent / minimum)",
            f"{result.cold_start_update_tlvs} / {result.cold_start_min_update_tlvs} "
            f"({result.cold_start_update_tlvs / max(1, result.cold_start_min_update_tlvs):.2f}x)",
        ),
        (
            "control per node: idle / churn / peak second after an event",
            f"{result.steady_bytes_per_node_s / 1000:.2f} / {_kb(result.churn_bytes_per_node_s)}"
            f" / {_kb(result.peak_after_event_bytes_per_node_s)} kB/s",
        ),
        ("peak routing-table entries (sampled nodes)", str(result.peak_table_entries)),
        ("router memory per node", f"{result.memory_per_node / 1e6:.2f} MB (deep sizeof)"),
        (
            "signature checks (computed / asked)",
            f"{result.signatures_computed} / {result.signature_checks}",
        ),
    ]
    for k, v in rows:
        head.add_row(k, v)
    events = Table(title="convergence after each event (seconds, over all alive nodes)")
    for col in (
        "t",
        "event",
        "median",
        "p99",
        "max",
        "not conv.",
        "affected",
        "min reach",
        "loops",
        "ctl kB/s",
        "peak kB/s",
    ):
        events.add_column(col, justify="right" if col not in ("event",) else "left")
    for e in result.events:
        events.add_row(
            f"{e.at:.1f}",
            e.label,
            _num(e.conv_median),
            _num(e.conv_p99),
            _num(e.conv_max),
            str(e.unconverged),
            str(e.affected),
            f"{e.min_reach_fraction:.3f}",
            str(e.max_loops),
            f"{e.ctl_bytes_per_node_s / 1000:.1f}",
            f"{e.ctl_peak_bytes_per_node_s / 1000:.1f}",
        )
    return [head, events]


def sim(
    topology: Annotated[str, typer.Option(help=f"Topology: {', '.join(TOPOLOGIES)}.")] = "geo",
    nodes: Annotated[int, typer.Option(help="Number of nodes (ignored for 'file').")] = 100,
    degree: Annotated[int, typer.Option(help="Links per node for geo/random.")] = 4,
    scenario: Annotated[
        str, typer.Option(help=f"Scenario: {', '.join(SCENARIOS)}.")
    ] = "cold-start",
    seed: Annotated[int, typer.Option(help="Seed for topology, keys and events.")] = 1,
    duration: Annotated[
        float | None,
        typer.Option(
            help="Simulated seconds to observe after each event [default: 10]",
            show_default=False,
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the full result as JSON.")
    ] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a convergence plot (PNG) here.")
    ] = None,
    topology_file: Annotated[
        Path | None,
        typer.Option(help="JSON edge list for --topology file: {nodes, edges: [[a, b, ms]]}."),
    ] = None,
) -> None:
    """Run the real router on a simulated network and measure it against the optimum."""
    console = Console(stderr=json_out)
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"choose one of {', '.join(SCENARIOS)}", param_hint="--scenario")
    if topology == "file" and topology_file is None:
        raise typer.BadParameter("--topology file needs --topology-file", param_hint="--topology")
    try:
        top = build(topology, nodes, degree, seed, topology_file)
    except TopologyError as exc:
        raise typer.BadParameter(str(exc), param_hint="--topology") from exc
    with Progress(
        TextColumn("[bold]simulating[/]"),
        BarColumn(),
        TextColumn("{task.completed:.1f}/{task.total:.1f} s simulated"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("sim", total=1.0)

        def report(now: float, end: float) -> None:
            progress.update(task, completed=now, total=max(end, now))

        run = Run(top, scenario, seed=seed, window=duration, progress=report)
        result = run.run()
    if json_out:
        print(result_to_json(result))
    else:
        for table in summary_tables(result):
            console.print(table)
    if plot is not None:
        from hyphal.sim.plotting import plot_convergence

        plot_convergence(result, plot)
        console.print(f"plot written to {plot}")
