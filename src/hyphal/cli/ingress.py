"""`hyphal ingress list|add|unwrap|remove`: the running daemon's public ingress listeners
(public TCP -> the nearest healthy instance of a service, with a PROXY header) and transparent
unwrap listeners (PROXY-wrapped TCP -> a local backend that sees the client's address)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from hyphal.cli.common import ApiAddr, JsonFlag, api_failure, client, fetch, out, print_json
from hyphal.client import ApiError
from hyphal.config import DEFAULT_API_ADDR

ingress_app = typer.Typer(
    help="Public ingress: accept TCP on this node and carry it, with the client's real address "
    "(PROXY protocol), to the nearest healthy instance of a service (docs/ingress.md).",
    no_args_is_help=True,
)

Listen = Annotated[str, typer.Option("--listen", help="ADDR:PORT to accept on, e.g. 0.0.0.0:6697")]
MaxConns = Annotated[
    int | None, typer.Option(help="Open connections at most (default 4096).", min=1)
]
MaxPerClient = Annotated[
    int | None, typer.Option(help="Open connections per client address (default 64).", min=1)
]
IdleTimeout = Annotated[
    float | None,
    typer.Option(help="Seconds without a byte either way before closing (default 300).", min=1),
]


def _limits(
    max_connections: int | None, max_per_client: int | None, idle_timeout: float | None
) -> dict[str, Any]:
    limits = {
        "maxConnections": max_connections,
        "maxPerClient": max_per_client,
        "idleTimeout": idle_timeout,
    }
    return {k: v for k, v in limits.items() if v is not None}


def _post(api_addr: str, path: str, body: dict[str, Any]) -> Any:
    api = client(api_addr)
    try:
        return api.json(api.post(path, body))
    except ApiError as exc:
        raise api_failure(exc) from None


def show_row(row: dict[str, Any]) -> str:
    if row["kind"] == "ingress":
        target = f"service {row['service']}, PROXY {row['proxyProtocol']}"
    else:
        mode = "transparent" if row.get("transparentActive") else "plain (not transparent)"
        target = f"backend {row['backend']}, {mode}"
    state = row["state"] if row["error"] is None else f"error: {row['error']}"
    return f"{row['listen']} -> {target}: {state}"


@ingress_app.command("list")
def ingress_list(api_addr: ApiAddr = DEFAULT_API_ADDR, as_json: JsonFlag = False) -> None:
    """Every ingress and unwrap listener, its state, open connections and counters."""
    body = fetch(api_addr, "/ingress")
    if as_json:
        print_json(body)
        return
    rows = body["listeners"]
    if not rows:
        out.print(
            "no ingress listeners (add one: hyphal ingress add --listen ADDR:PORT --service NAME)"
        )
        return
    table = Table("listen", "kind", "to", "state", "open", "last instance", "counters", box=None)
    for row in rows:
        if row["kind"] == "ingress":
            to = f"{row['service']} (PROXY {row['proxyProtocol']}, {row['instances']} healthy)"
            last = row["lastInstance"]
            last_text = (
                "-"
                if last is None
                else (
                    f"{last['node'] or last['publicKey'][:16]} [{last['address']}]:{last['port']}"
                )
            )
        else:
            to = f"{row['backend']} ({'transparent' if row['transparentActive'] else 'plain'})"
            last_text = "-"
        counters = ", ".join(f"{k} {v}" for k, v in sorted(row["counters"].items()) if v)
        state = row["state"] if row["error"] is None else f"error: {row['error']}"
        table.add_row(
            row["listen"], row["kind"], to, state, str(row["open"]), last_text, counters or "-"
        )
    out.print(table)


@ingress_app.command("add")
def ingress_add(
    listen: Listen,
    service: Annotated[str, typer.Option("--service", help="The service to carry traffic to.")],
    proxy_protocol: Annotated[
        str,
        typer.Option(
            "--proxy-protocol",
            help="Header sent to the instance: v2 (InspIRCd, HAProxy, nginx, Postfix), v1 "
            "(text; older receivers) or none.",
        ),
    ] = "v2",
    max_connections: MaxConns = None,
    max_per_client: MaxPerClient = None,
    idle_timeout: IdleTimeout = None,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Accept public TCP on ADDR:PORT and splice it to the nearest healthy instance of SERVICE,
    with a PROXY header carrying the client's address and the address it dialled."""
    body = {
        "listen": listen,
        "service": service,
        "proxyProtocol": proxy_protocol,
        "limits": _limits(max_connections, max_per_client, idle_timeout),
    }
    row = _post(api_addr, "/ingress", body)
    if as_json:
        print_json(row)
        return
    out.print(show_row(row), highlight=False)


@ingress_app.command("unwrap")
def ingress_unwrap(
    listen: Listen,
    backend: Annotated[
        str, typer.Option("--backend", help="The local backend, e.g. 127.0.0.1:6668.")
    ],
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="Senders allowed to send PROXY headers (CIDR; repeat). Default: the overlay "
            "400::/7 and loopback.",
        ),
    ] = None,
    plain: Annotated[
        bool,
        typer.Option("--plain", help="Do not connect from the client's address (no root needed)."),
    ] = False,
    route_table: Annotated[
        int, typer.Option(help="Policy routing table for replies (transparent mode).")
    ] = 1066,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Take the PROXY header off connections on ADDR:PORT and connect to BACKEND from the
    client's own address (IP_TRANSPARENT), for backends that cannot read PROXY (ngircd)."""
    body: dict[str, Any] = {
        "listen": listen,
        "backend": backend,
        "transparent": not plain,
        "routeTable": route_table,
    }
    if allow:
        body["allow"] = allow
    row = _post(api_addr, "/ingress/unwrap", body)
    if as_json:
        print_json(row)
        return
    out.print(show_row(row), highlight=False)


@ingress_app.command("remove")
def ingress_remove(
    listen: Annotated[str, typer.Argument(help="The listener's ADDR:PORT, as `list` shows it.")],
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Close an ingress or unwrap listener and the connections it carries."""
    api = client(api_addr)
    try:
        api.request("DELETE", "/ingress", params={"listen": listen})
    except ApiError as exc:
        raise api_failure(exc) from None
    if as_json:
        print_json({"removed": listen})
        return
    out.print(f"removed {listen}", highlight=False)
