"""`hyphal routes selected|fallback`: the running daemon's routing table."""

from __future__ import annotations

import typer
from rich.table import Table

from hyphal.cli.common import (
    ApiAddr,
    JsonFlag,
    fetch,
    out,
    print_json,
)
from hyphal.config import DEFAULT_API_ADDR

METRIC_HELP = (
    "The metric is the path's cost: the sum of its link costs, each the link's one-way latency "
    "(half the measured RTT) in units of 0.1 ms and at least 10 (1 ms) per hop, so '20 (~2.0 ms)' "
    "over two LAN hops is the floor, not a measurement. 'rtt' is the measured round trip to the "
    "next hop."
)

routes_app = typer.Typer(help="Show the running daemon's routing table.", no_args_is_help=True)


def _routes(kind: str, api_addr: str, as_json: bool) -> None:
    rows = fetch(api_addr, f"/admin/routes/{kind}")
    if as_json:
        print_json(rows)
        return
    table = Table("destination", "subnet", "via", "metric", "next hop rtt", "seqno", box=None)
    for row in rows:
        metric = row["metric"]
        shown = metric if isinstance(metric, str) else f"{metric} (~{metric / 10:.1f} ms)"
        rtt = row.get("nextHopRttMs")
        via = row.get("nextHopName") or row.get("nextHopAddress") or row["nextHop"]
        table.add_row(
            row.get("name") or row.get("address") or row["publicKey"][:16],
            row["subnet"],
            via,
            shown,
            "-" if rtt is None else f"{rtt:.2f} ms",
            str(row["seqno"]),
        )
    out.print(table if rows else f"no {kind} routes")


@routes_app.command(
    "selected",
    help="Routes in use: for each node this one reaches (one /64 each), the neighbour it goes "
    "through and the path's metric, the lowest-latency feasible path.\n\n" + METRIC_HELP,
)
def routes_selected(api_addr: ApiAddr = DEFAULT_API_ADDR, as_json: JsonFlag = False) -> None:
    _routes("selected", api_addr, as_json)


@routes_app.command(
    "fallback",
    help="Routes kept in reserve for instant failover (other neighbours' paths to the same "
    "nodes).\n\n" + METRIC_HELP,
)
def routes_fallback(api_addr: ApiAddr = DEFAULT_API_ADDR, as_json: JsonFlag = False) -> None:
    _routes("fallback", api_addr, as_json)
