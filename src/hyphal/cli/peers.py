"""`hyphal peers list|add|remove`: the running daemon's peers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from hyphal.cli.common import (
    EXIT_RUNTIME,
    EXIT_USAGE,
    ApiAddr,
    JsonFlag,
    api_failure,
    client,
    err,
    fetch,
    human_bytes,
    out,
    print_json,
    visible,
)
from hyphal.client import ApiError, Client
from hyphal.config import DEFAULT_API_ADDR
from hyphal.links.endpoint import Endpoint, EndpointError

COST_HELP = (
    "cost is the link's routing metric: its one-way latency (half the measured RTT) in units "
    "of 0.1 ms, at least 10 (1 ms) per hop so that hop count always counts; a LAN link with a "
    "0.5 ms RTT shows cost 10."
)

peers_app = typer.Typer(
    help="List, add and remove peers of the running daemon.", no_args_is_help=True
)


def _uptime(seconds: int | None) -> str:
    from hyphal.cli.status import duration

    return "-" if seconds is None else duration(seconds)


def peer_table(rows: list[dict[str, Any]]) -> Table:
    """The peers table shared by `peers list` and `status`."""
    table = Table(
        "endpoint",
        "type",
        "state",
        "peer",
        "up",
        "rtt ms",
        "cost",
        "tx",
        "rx",
        "last error",
        box=None,
    )
    for row in rows:
        ep = row["endpoint"]
        peer = row.get("name") or row.get("address") or ""
        error = row.get("lastError") or ""
        table.add_row(
            visible(f"{ep['proto']}://{ep['socketAddr']}"),
            row["type"],
            row["connectionState"],
            peer,
            _uptime(row.get("uptimeSeconds")) if row["connectionState"] == "alive" else "-",
            "" if row.get("rttMs") is None else f"{row['rttMs']:.2f}",
            "" if row.get("linkCost") is None else str(row["linkCost"]),
            human_bytes(row["txBytes"]),
            human_bytes(row["rxBytes"]),
            visible(error) if row["connectionState"] != "alive" else "",
        )
    return table


@peers_app.command(
    "list",
    help="Show peers: state, overlay address, uptime, measured RTT, "
    "link cost, traffic and the last error (why a peer is dead).\n\n" + COST_HELP,
)
def peers_list(api_addr: ApiAddr = DEFAULT_API_ADDR, as_json: JsonFlag = False) -> None:
    rows = fetch(api_addr, "/admin/peers")
    if as_json:
        print_json(rows)
        return
    out.print(peer_table(rows) if rows else "no peers")


def suggest_uri(text: str) -> str | None:
    """``tcp://host:port`` for a ``host:port`` typed without the scheme, else None."""
    if "://" in text or ":" not in text:
        return None
    candidate = f"tcp://{text}"
    try:
        Endpoint.parse(candidate)
    except EndpointError:
        return None
    return candidate


def check_peer_uri(text: str) -> str | None:
    """An error message for a peer URI that cannot be used, or None when it parses."""
    try:
        Endpoint.parse(text)
    except EndpointError as exc:
        hint = suggest_uri(text)
        return f"{text!r} is not a peer URI: did you mean {hint}?" if hint else str(exc)
    return None


@peers_app.command("add")
def peers_add(
    endpoints: Annotated[
        list[str], typer.Argument(help="Peer URIs, e.g. tcp://192.0.2.6:9651", metavar="URI...")
    ],
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Add static peers to the running daemon."""
    for_each_endpoint(
        api_addr,
        endpoints,
        lambda api, ep: api.post("/admin/peers", {"endpoint": ep}),
        "added",
        as_json,
    )


@peers_app.command("remove")
def peers_remove(
    endpoints: Annotated[list[str], typer.Argument(help="Peer URIs to remove", metavar="URI...")],
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Remove static peers (and close their links)."""
    for_each_endpoint(
        api_addr,
        endpoints,
        lambda api, ep: api.delete(f"/admin/peers/{Client.quote(ep)}"),
        "removed",
        as_json,
    )


def for_each_endpoint(
    api_addr: str,
    endpoints: list[str],
    act: Callable[[Client, str], object],
    done: str,
    as_json: bool,
) -> None:
    """Apply one API call per endpoint and report each. Exit 2 if any URI is malformed (nothing
    is sent then), 3 if the daemon is unreachable, 1 if the daemon refused any."""
    bad = [(ep, msg) for ep in endpoints if (msg := check_peer_uri(ep)) is not None]
    if bad:
        results = [{"endpoint": ep, "ok": False, "error": msg} for ep, msg in bad]
        if as_json:
            print_json({"results": results})
        for _, msg in bad:
            if not as_json:
                err.print(f"[bold red]error:[/] {visible(msg)}", highlight=False)
        raise typer.Exit(EXIT_USAGE)
    api = client(api_addr)
    results = []
    failed = False
    for endpoint in endpoints:
        try:
            act(api, endpoint)
            results.append({"endpoint": endpoint, "ok": True, "error": None})
            if not as_json:
                out.print(f"{done} {visible(endpoint)}", highlight=False)
        except ApiError as exc:
            if exc.unreachable:
                raise api_failure(exc) from None
            failed = True
            results.append({"endpoint": endpoint, "ok": False, "error": str(exc)})
            if not as_json:
                err.print(f"[bold red]error:[/] {visible(str(exc))}", highlight=False)
    if as_json:
        print_json({"results": results})
    if failed:
        raise typer.Exit(EXIT_RUNTIME)
