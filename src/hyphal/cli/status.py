"""`hyphal status`, `hyphal ip` and `hyphal version`: this node at a glance, from the running daemon."""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table

from hyphal import __version__
from hyphal.cli.common import ApiAddr, JsonFlag, api_hint, fetch, out, print_json, visible
from hyphal.cli.peers import peer_table
from hyphal.config import DEFAULT_API_ADDR


def duration(seconds: float | None) -> str:
    """``3d 4h``, ``5h 12m``, ``7m 3s``, ``42s``; ``-`` for unknown."""
    if seconds is None:
        return "-"
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {s}s"
    return f"{s}s"


def _hop(hop: str | None) -> str:
    return "nothing" if hop is None else visible(hop)


def show_status(body: dict[str, Any], api_addr: str) -> None:
    me = body["self"]
    net = me["network"]
    network = "public" if net["public"] else f"private '{visible(str(net['name']))}'"
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_column(style="bold")
    head.add_column()
    counts = body["counts"]
    members = "-" if counts.get("members") is None else str(counts["members"])
    if counts.get("membersReachable") is not None:
        members += f" ({counts['membersReachable']} reachable)"
    for label, value in (
        ("name", me.get("name") or "-"),
        ("address", me["address"]),
        ("subnet", me["subnet"]),
        ("public key", me["publicKey"]),
        ("network", network),
        ("role", me["role"]),
        ("version", me["version"]),
        ("uptime", duration(me["uptimeSeconds"])),
        ("listening", ", ".join(body["listen"]) or "no (dials out only)"),
        (
            "api",
            body["apiAddr"]
            + (f", metrics {body['metricsAddr']}" if body.get("metricsAddr") else ""),
        ),
        (
            "known",
            f"{counts['peersAlive']}/{counts['peers']} peers alive, {counts['routes']} routes "
            f"(+{counts['fallbackRoutes']} fallback), members {members}",
        ),
    ):
        head.add_row(label, value)
    out.print(head)
    out.print()
    peers = body["peers"]
    if peers:
        out.print(peer_table(peers))
    else:
        out.print(f"no peers: add one with 'hyphal peers add{api_hint(api_addr)} tcp://HOST:9651'")
    out.print()
    failovers = body["recentFailovers"]
    if not failovers:
        out.print("recent failovers: none")
        return
    out.print(f"recent failovers (newest first, {body['failoversTotal']} since start):")
    table = Table("when", "destination", "from", "to", "why", box=None)
    now = time.time()
    for event in failovers:
        table.add_row(
            duration(now - event["time"]) + " ago",
            event["address"],
            _hop(event["from"]),
            _hop(event["to"]),
            visible(event["reason"]),
        )
    out.print(table)


def status(api_addr: ApiAddr = DEFAULT_API_ADDR, as_json: JsonFlag = False) -> None:
    """This node at a glance: identity, network, listeners, peers (and why one is dead), route
    count and recent failovers."""
    body = fetch(api_addr, "/admin/status")
    if as_json:
        print_json(body)
        return
    show_status(body, api_addr)


def ip(api_addr: ApiAddr = DEFAULT_API_ADDR, as_json: JsonFlag = False) -> None:
    """Print this node's overlay address, as the running daemon reports it (no -k needed)."""
    info = fetch(api_addr, "/admin")
    if as_json:
        print_json({"address": info["nodeIp"], "subnet": info["nodeSubnet"]})
    else:
        out.print(info["nodeIp"], highlight=False)


def version(as_json: JsonFlag = False) -> None:
    """Print hyphal's version (of this command; `hyphal status` shows the daemon's)."""
    if as_json:
        print_json({"version": __version__})
    else:
        out.print(f"hyphal {__version__}", highlight=False)
