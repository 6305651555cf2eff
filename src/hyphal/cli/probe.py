"""`hyphal ping` and `hyphal stats`: probe the mesh through the running daemon."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from hyphal.cli.common import (
    EXIT_RUNTIME,
    ApiAddr,
    JsonFlag,
    api_failure,
    client,
    destination_body,
    fetch,
    human_bytes,
    out,
    print_json,
)
from hyphal.client import ApiError
from hyphal.config import DEFAULT_API_ADDR


def ping(
    dest: Annotated[
        str,
        typer.Argument(help="Member name, overlay IPv6 address or hex public key", metavar="DEST"),
    ],
    count: Annotated[
        int,
        typer.Option(
            "-c", "--count", help="Stop after this many requests (0: until Ctrl-C); as in ping(8)"
        ),
    ] = 4,
    interval: Annotated[
        float, typer.Option("-i", "--interval", help="Seconds between requests", min=0.05)
    ] = 1.0,
    timeout: Annotated[
        float,
        typer.Option("-W", "--timeout", help="Seconds to wait for each reply", min=0.01, max=60),
    ] = 2.0,
    size: Annotated[
        int, typer.Option("-s", "--size", help="Extra payload bytes", min=0, max=60000)
    ] = 0,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Send end-to-end encrypted echo requests through the mesh, like ping."""
    body: dict[str, Any] = {"dst": destination_body(dest), "timeout": timeout, "size": size}
    api = client(api_addr, timeout=timeout + 5)
    results: list[dict[str, Any]] = []
    if not as_json:
        out.print(f"PING {dest} through the hyphal overlay")
    seq = 0
    try:
        while count == 0 or seq < count:
            seq += 1
            started = time.monotonic()
            try:
                reply = api.json(api.post("/admin/ping", body))
                result = {
                    "seq": seq,
                    "rttMs": reply["rtt_ms"],
                    "hops": reply["hops"],
                    "size": reply["size"],
                }
                results.append(result)
                if not as_json:
                    out.print(
                        f"reply from {dest}: seq={seq} hops={reply['hops']} time={reply['rtt_ms']:.3f} ms"
                    )
            except ApiError as exc:
                if exc.status not in (404, 408):
                    raise api_failure(exc) from None
                results.append({"seq": seq, "error": str(exc)})
                if not as_json:
                    out.print(f"seq={seq}: {exc}")
            if count == 0 or seq < count:
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    rtts = [r["rttMs"] for r in results if "rttMs" in r]
    summary = {
        "transmitted": len(results),
        "received": len(rtts),
        "lossPercent": 0.0 if not results else round(100 * (1 - len(rtts) / len(results)), 1),
        "rttMinMs": min(rtts, default=None),
        "rttAvgMs": round(sum(rtts) / len(rtts), 3) if rtts else None,
        "rttMaxMs": max(rtts, default=None),
    }
    if as_json:
        print_json({"destination": dest, "replies": results, "summary": summary})
    else:
        out.print(f"--- {dest} ping statistics ---")
        out.print(
            f"{summary['transmitted']} sent, {summary['received']} received, {summary['lossPercent']}% loss"
        )
        if rtts:
            out.print(
                f"rtt min/avg/max = {min(rtts):.3f}/{summary['rttAvgMs']:.3f}/{max(rtts):.3f} ms"
            )
    if not rtts:
        raise typer.Exit(EXIT_RUNTIME)


def stats(api_addr: ApiAddr = DEFAULT_API_ADDR, as_json: JsonFlag = False) -> None:
    """Packets and bytes per peer and direction, and drops by reason."""
    report = fetch(api_addr, "/admin/stats/packets")
    if as_json:
        print_json(report)
        return
    table = Table("peer", "rx packets", "rx bytes", "tx packets", "tx bytes", box=None)
    for row in report["peers"]:
        rx, tx = row["rx"], row["tx"]
        table.add_row(
            row["publicKey"][:16],
            str(rx["packets"]),
            human_bytes(rx["bytes"]),
            str(tx["packets"]),
            human_bytes(tx["bytes"]),
        )
    out.print(table if report["peers"] else "no data packets yet")
    local, fwd = report["local"], report["forwarded"]
    out.print(
        f"this node: sent {local['tx']['packets']} packets ({human_bytes(local['tx']['bytes'])}), "
        f"received {local['rx']['packets']} ({human_bytes(local['rx']['bytes'])}); "
        f"relayed {fwd['packets']} ({human_bytes(fwd['bytes'])})"
    )
    drops = report["drops"]
    out.print(
        "drops: " + (", ".join(f"{reason} {n}" for reason, n in drops.items()) if drops else "none")
    )
