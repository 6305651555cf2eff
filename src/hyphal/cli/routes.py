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
from hyphal.client import default_api_addr

routes_app = typer.Typer(help="Show the running daemon's routing table.", no_args_is_help=True)


def _routes(kind: str, api_addr: str, as_json: bool) -> None:
    rows = fetch(api_addr, f"/admin/routes/{kind}")
    if as_json:
        print_json(rows)
        return
    table = Table("subnet", "next hop", "metric", "seqno", box=None)
    for row in rows:
        metric = row["metric"]
        shown = metric if isinstance(metric, str) else f"{metric} ({metric / 10:.1f} ms)"
        table.add_row(row["subnet"], row["nextHop"], shown, str(row["seqno"]))
    out.print(table if rows else f"no {kind} routes")


@routes_app.command("selected")
def routes_selected(api_addr: ApiAddr = default_api_addr(), as_json: JsonFlag = False) -> None:
    """Routes in use: one per reachable /64, least latency first-class."""
    _routes("selected", api_addr, as_json)


@routes_app.command("fallback")
def routes_fallback(api_addr: ApiAddr = default_api_addr(), as_json: JsonFlag = False) -> None:
    """Routes kept in reserve for instant failover."""
    _routes("fallback", api_addr, as_json)
