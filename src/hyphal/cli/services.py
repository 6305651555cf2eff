"""`hyphal service add|list|show|remove|drain|resume|grant`: services on the mesh and this node's
own instances (docs/services.md). Every command but ``grant`` talks to the running daemon;
``grant`` signs offline with the owner's key file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hyphal.cli.common import (
    EXIT_USAGE,
    ApiAddr,
    JsonFlag,
    KeyFile,
    api_failure,
    client,
    fail,
    fetch,
    out,
    print_json,
    visible,
)
from hyphal.client import ApiError
from hyphal.config import DEFAULT_API_ADDR
from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import DEFAULT_KEY_FILE, IdentityError, NodeIdentity, parse_public_key
from hyphal.membership.record import is_label
from hyphal.node.members import PUBLIC_NETWORK
from hyphal.services.grant import make_grant

service_app = typer.Typer(
    help="Services: one name, many instances; new flows go to the nearest healthy one.",
    no_args_is_help=True,
)


def _instance_state(row: dict[str, Any]) -> str:
    if not row["authorised"]:
        return "not authorised"
    if not row["reachable"]:
        return "unreachable"
    if row["draining"]:
        return "draining"
    return "healthy" if row["healthy"] else "unhealthy"


def _node(row: dict[str, Any]) -> str:
    name = visible(row.get("node") or "") or row["address"]
    return name + (" *" if row.get("self") else "")


def show_services(body: dict[str, Any]) -> None:
    local = body["local"]
    if local:
        table = Table("local", "port", "check", "state", "last check", box=None, title=None)
        for row in local:
            state = "draining" if row["draining"] else "healthy" if row["healthy"] else "unhealthy"
            if row["owner"] is None:
                state += ", no grant"
            last = row["lastCheck"]
            table.add_row(
                row["name"],
                f"{row['proto']}/{row['port']}",
                visible(row["check"]),
                state,
                "-" if last is None else visible(last["detail"]),
            )
        out.print(table)
        out.print()
    if not body["services"]:
        out.print("no services published in the mesh yet ('hyphal service add NAME --port P')")
        return
    table = Table("service", "address", "instance", "port", "state", "metric", "weight", box=None)
    for svc in body["services"]:
        first = True
        for row in svc["instances"]:
            table.add_row(
                svc["name"] if first else "",
                svc["address"] if first else "",
                _node(row),
                f"{row['proto']}/{row['port']}",
                _instance_state(row),
                "-" if row["metric"] is None else str(row["metric"]),
                str(row["weight"]),
            )
            first = False
    out.print(table)


@service_app.command("list")
def list_services(api_addr: ApiAddr = DEFAULT_API_ADDR, as_json: JsonFlag = False) -> None:
    """Every service in the mesh (nearest usable instance first) and this node's own."""
    body = fetch(api_addr, "/services")
    if as_json:
        print_json(body)
        return
    show_services(body)


@service_app.command("show")
def show_service(
    name: Annotated[str, typer.Argument(help="Service name.")],
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """One service: its address and every instance as this node sees it."""
    body = fetch(api_addr, f"/services/{name}")
    if as_json:
        print_json(body)
        return
    show_services({"local": [], "services": [body]})


def _request(api_addr: str, method: str, path: str, body: Any = None) -> Any:
    api = client(api_addr)
    try:
        response = (
            api.request(method, path, json=body) if body is not None else api.request(method, path)
        )
        return api.json(response)
    except ApiError as exc:
        raise api_failure(exc) from None


@service_app.command("add")
def add_service(
    name: Annotated[str, typer.Argument(help="Service name (a DNS label, e.g. irc).")],
    port: Annotated[int, typer.Option("--port", "-p", help="Port the local instance listens on.")],
    proto: Annotated[str, typer.Option("--proto", help="tcp or udp.")] = "tcp",
    check: Annotated[
        str | None,
        typer.Option(
            "--check",
            help="tcp (connect), http://PATH (GET: 2xx/3xx) or none [default: tcp; udp: none]; "
            "exec:CMD checks only in a [[service]] table of the config file",
        ),
    ] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between checks [1].")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds one check may take [1].")] = None,
    rise: Annotated[int | None, typer.Option(help="Passes in a row to become healthy [2].")] = None,
    fall: Annotated[
        int | None, typer.Option(help="Failures in a row to become unhealthy [2].")
    ] = None,
    weight: Annotated[
        int | None, typer.Option(help="1..255: share of new flows among near-equal [100].")
    ] = None,
    grant: Annotated[
        str | None,
        typer.Option("--grant", help="The owner's grant for this node ('hyphal service grant')."),
    ] = None,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Serve NAME from this node: checked locally, published when healthy, kept across restarts."""
    body: dict[str, Any] = {"name": name, "port": port, "proto": proto}
    for key, value in (
        ("check", check),
        ("interval", interval),
        ("timeout", timeout),
        ("rise", rise),
        ("fall", fall),
        ("weight", weight),
        ("grant", grant),
    ):
        if value is not None:
            body[key] = value
    row = _request(api_addr, "POST", "/services", body)
    if as_json:
        print_json(row)
        return
    out.print(
        f"serving {row['name']} on {row['proto']}/{row['port']} (check {row['check']}); "
        f"unhealthy until it passes {row['rise']} checks. Service address {row['address']}",
        highlight=False,
    )
    if row["owner"] is None:
        out.print(
            "no grant: on this private network no node will choose this instance until an "
            "admin runs 'hyphal service grant' for it and you add it again with --grant",
            highlight=False,
        )


@service_app.command("remove")
def remove_service(
    name: Annotated[str, typer.Argument(help="Service name.")],
    proto: Annotated[str | None, typer.Option(help="Only this proto (tcp or udp).")] = None,
    port: Annotated[int | None, typer.Option(help="Only this port.")] = None,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Stop serving NAME from this node (new flows go elsewhere at once)."""
    query = []
    if proto is not None:
        query.append(f"proto={proto}")
    if port is not None:
        query.append(f"port={port}")
    path = f"/services/{name}" + ("?" + "&".join(query) if query else "")
    row = _request(api_addr, "DELETE", path)
    if as_json:
        print_json(row)
        return
    out.print(f"removed {row['removed']} instance(s) of {row['name']}", highlight=False)


def _drain(name: str, api_addr: str, as_json: bool, action: str) -> None:
    row = _request(api_addr, "POST", f"/services/{name}/{action}", {})
    if as_json:
        print_json(row)
        return
    if row["draining"]:
        out.print(
            f"{name} is draining: no new flows come here; flows already here finish "
            f"('hyphal service resume {name}' to undo)",
            highlight=False,
        )
    else:
        out.print(f"{name} takes new flows again", highlight=False)


@service_app.command("drain")
def drain(
    name: Annotated[str, typer.Argument(help="Service name.")],
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Graceful stop: no new flows to this node's NAME; pinned flows finish."""
    _drain(name, api_addr, as_json, "drain")


@service_app.command("resume")
def resume(
    name: Annotated[str, typer.Argument(help="Service name.")],
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Undo a drain: new flows may come to this node's NAME again."""
    _drain(name, api_addr, as_json, "resume")


@service_app.command("grant")
def grant(
    name: Annotated[str, typer.Argument(help="Service name.")],
    to: Annotated[
        str, typer.Option("--to", help="The instance node's public key (hex) or member name.")
    ],
    days: Annotated[float, typer.Option(help="Days the grant is valid.")] = 365.0,
    since: Annotated[
        int | None,
        typer.Option(help="When you first claimed NAME (Unix seconds) [default: now]."),
    ] = None,
    key_file: KeyFile = DEFAULT_KEY_FILE,
    network_name: Annotated[
        str | None,
        typer.Option("--network-name", help="The private network's name [default: public]."),
    ] = None,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """As the owner (your key file; an admin's on a private network), allow a node to serve NAME.

    Prints the grant; on that node run: hyphal service add NAME --port P --grant GRANT."""
    if not is_label(name):
        raise fail(f"{visible(name)!r} is not a service name (a DNS label)", EXIT_USAGE)
    try:
        instance = parse_public_key(to)
    except IdentityError:
        if not is_label(to):
            raise fail(
                f"--to {visible(to)!r}: a 64-character hex public key or a member name", EXIT_USAGE
            ) from None
        instance = parse_public_key(fetch(api_addr, f"/members/{to}")["publicKey"])
    try:
        owner = NodeIdentity.load(Path(key_file))
    except (IdentityError, OSError) as exc:
        raise fail(f"cannot read the owner's key file {key_file}: {exc}") from None
    if days <= 0:
        raise fail("--days must be positive", EXIT_USAGE)
    now = int(time.time())
    network = network_name.encode() if network_name else PUBLIC_NETWORK
    made = make_grant(
        XEdDSASigner(owner.private_bytes()),
        network,
        service=name,
        instance=instance,
        owner=owner.public_key,
        since=now if since is None else since,
        expires=min(0xFFFFFFFF, now + int(days * 86400)),
    )
    if as_json:
        print_json(
            {
                "grant": made.text(),
                "service": name,
                "instance": instance.hex(),
                "owner": owner.public_key.hex(),
                "since": made.since,
                "expires": made.expires,
            }
        )
        return
    out.print(made.text(), highlight=False, soft_wrap=True)
    typer.echo(
        f"# on the instance node: hyphal service add {name} --port PORT --grant {made.text()}",
        err=True,
    )
