"""`hyphal ping` and `hyphal stats`: probe the mesh through the running daemon."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from hyphal.cli.common import (
    ApiAddr,
    JsonFlag,
    destination_body,
    fail,
    fetch,
    human_bytes,
    out,
    print_json,
)
from hyphal.client import ApiError, Client, default_api_addr


def ping(
    dest: Annotated[str, typer.Argument(help="Overlay IPv6 address or hex public key")],
    count: Annotated[
        int, typer.Option("-c", "--count", help="Stop after this many replies (0: until Ctrl-C)")
    ] = 4,
    interval: Annotated[
        float, typer.Option("-i", "--interval", help="Seconds between requests")
    ] = 1.0,
    timeout: Annotated[
        float, typer.Option("-W", "--timeout", help="Seconds to wait for each reply")
    ] = 2.0,
    size: Annotated[int, typer.Option("-s", "--size", help="Extra payload bytes")] = 0,
    api_addr: ApiAddr = default_api_addr(),
    as_json: JsonFlag = False,
) -> None:
    """Send end-to-end encrypted echo requests through the mesh, like ping."""
    body: dict[str, Any] = {"dst": destination_body(dest), "timeout": timeout, "size": size}
    api = Client(api_addr, timeout=timeout + 5)
    results: list[dict[str, Any]] = []
    if not as_json:
        out.print(f"PING {dest} through the hyphal overlay")
    seq = 0
    try:
        while count == 0 or seq < count:
            seq += 1
            started = time.monotonic()
            try:
                reply = api.post("/admin/ping", body).json()
                results.append({"seq": seq, **reply})
                if not as_json:
                    out.print(
                        f"reply from {dest}: seq={seq} hops={reply['hops']} time={reply['rtt_ms']:.3f} ms"
                    )
            except ApiError as exc:
                if exc.status not in (404, 408):
                    raise fail(str(exc)) from None
                results.append({"seq": seq, "error": str(exc)})
                if not as_json:
                    out.print(f"seq={seq}: {exc}")
            if count == 0 or seq < count:
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    rtts = [r["rtt_ms"] for r in results if "rtt_ms" in r]
    summary = {
        "transmitted": len(results),
        "received": len(rtts),
        "loss": 0.0 if not results else round(100 * (1 - len(rtts) / len(results)), 1),
        "rtt_min_ms": min(rtts, default=None),
        "rtt_avg_ms": round(sum(rtts) / len(rtts), 3) if rtts else None,
        "rtt_max_ms": max(rtts, default=None),
    }
    if as_json:
        print_json({"destination": dest, "replies": results, "summary": summary})
    else:
        out.print(f"--- {dest} ping statistics ---")
        out.print(
            f"{summary['transmitted']} sent, {summary['received']} received, {summary['loss']}% loss"
        )
        if rtts:
            out.print(
                f"rtt min/avg/max = {min(rtts):.3f}/{summary['rtt_avg_ms']:.3f}/{max(rtts):.3f} ms"
            )
    if not rtts:
        raise typer.Exit(1)


def stats(api_addr: ApiAddr = default_api_addr(), as_json: JsonFlag = False) -> None:
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
