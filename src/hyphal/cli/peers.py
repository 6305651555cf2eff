"""`hyphal peers list|add|remove`: the running daemon's peers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table

from hyphal.cli.common import (
    ApiAddr,
    JsonFlag,
    client,
    err,
    fetch,
    human_bytes,
    out,
    print_json,
)
from hyphal.client import ApiError, Client, default_api_addr

peers_app = typer.Typer(
    help="List, add and remove peers of the running daemon.", no_args_is_help=True
)


@peers_app.command("list")
def peers_list(api_addr: ApiAddr = default_api_addr(), as_json: JsonFlag = False) -> None:
    """Show peers with their state, traffic and measured RTT."""
    rows = fetch(api_addr, "/admin/peers")
    if as_json:
        print_json(rows)
        return
    table = Table("endpoint", "type", "state", "public key", "rtt ms", "cost", "tx", "rx", box=None)
    for row in rows:
        ep = row["endpoint"]
        table.add_row(
            f"{ep['proto']}://{ep['socketAddr']}",
            row["type"],
            row["connectionState"],
            (row.get("publicKey") or "")[:16],
            "" if row.get("rttMs") is None else f"{row['rttMs']:.2f}",
            "" if row.get("linkCost") is None else str(row["linkCost"]),
            human_bytes(row["txBytes"]),
            human_bytes(row["rxBytes"]),
        )
    out.print(table if rows else "no peers")


@peers_app.command("add")
def peers_add(
    endpoints: Annotated[list[str], typer.Argument(help="Peer URIs, e.g. tcp://192.0.2.6:9651")],
    api_addr: ApiAddr = default_api_addr(),
) -> None:
    """Add static peers to the running daemon."""
    for_each_endpoint(
        api_addr, endpoints, lambda api, ep: api.post("/admin/peers", {"endpoint": ep}), "added"
    )


@peers_app.command("remove")
def peers_remove(
    endpoints: Annotated[list[str], typer.Argument(help="Peer URIs to remove")],
    api_addr: ApiAddr = default_api_addr(),
) -> None:
    """Remove static peers (and close their links)."""
    for_each_endpoint(
        api_addr,
        endpoints,
        lambda api, ep: api.delete(f"/admin/peers/{Client.quote(ep)}"),
        "removed",
    )


def for_each_endpoint(
    api_addr: str, endpoints: list[str], act: Callable[[Client, str], object], done: str
) -> None:
    """Apply one API call per endpoint, report each, and exit 1 if any failed."""
    api = client(api_addr)
    failed = False
    for endpoint in endpoints:
        try:
            act(api, endpoint)
            out.print(f"{done} {endpoint}")
        except ApiError as exc:
            failed = True
            err.print(f"[red]{endpoint}:[/] {exc}")
    if failed:
        raise typer.Exit(1)
