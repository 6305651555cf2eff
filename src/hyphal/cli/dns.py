"""`hyphal dns status`: the running daemon's DNS server: zone, listeners, resolved, counters."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from hyphal.cli.common import ApiAddr, JsonFlag, fetch, out, print_json, visible
from hyphal.config import DEFAULT_API_ADDR

dns_app = typer.Typer(
    help="The daemon's DNS server (names under <network>.internal).", no_args_is_help=True
)

_RESOLVED = {
    "registered": "registered on {link}: {detail}",
    "not-running": "not running ({detail}); point a stub at this server (docs/dns.md)",
    "failed": "failed: {detail}",
    "off": "off: {detail}",
    "reverted": "reverted",
}


def show_dns(body: dict[str, Any]) -> None:
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_column(style="bold")
    head.add_column()
    resolved = body["resolved"]
    template = _RESOLVED.get(resolved["state"], "{state}: {detail}")
    head.add_row("domain", f"{body['domain']} (reverse: {', '.join(body['reverseZones'])})")
    head.add_row("names", str(body["names"]))
    head.add_row(
        "ttl",
        f"{body['ttl']} s, negative {body['negativeTtl']} s, offline members "
        f"{body['offlineTtl']} s (NODATA, marked)",
    )
    head.add_row("systemd-resolved", visible(template.format(**resolved)))
    head.add_row("forwarding", "none: names outside our zones are REFUSED")
    out.print(head)
    out.print()
    listeners = Table("listener", "state", box=None)
    for row in body["listeners"]:
        listeners.add_row(
            row["listener"], row["state"] if row["error"] is None else visible(row["error"])
        )
    out.print(listeners if body["listeners"] else "no listeners")
    out.print()
    counters = body["counters"]
    shown = {k: v for k, v in counters.items() if v}
    out.print(
        "counters: "
        + (", ".join(f"{k} {v}" for k, v in shown.items()) if shown else "no queries yet"),
        highlight=False,
    )


@dns_app.command("status")
def dns_status(api_addr: ApiAddr = DEFAULT_API_ADDR, as_json: JsonFlag = False) -> None:
    """Zone, listen addresses, systemd-resolved registration and query counters."""
    body = fetch(api_addr, "/dns")
    if as_json:
        print_json(body)
        return
    show_dns(body)
