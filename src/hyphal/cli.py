"""The `hyphal` command: the daemon (`run`), key tools, and clients of a running daemon's API."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hyphal.cli_common import (
    ApiAddr,
    JsonFlag,
    KeyFile,
    client,
    destination_body,
    err,
    fail,
    fetch,
    out,
    print_json,
)
from hyphal.cli_messages import message_app
from hyphal.client import ApiError, Client, default_api_addr
from hyphal.config import (
    DEFAULT_CONFIG_FILE,
    ConfigError,
    NodeConfig,
    load_config_file,
    parse_peers,
)
from hyphal.identity import (
    DEFAULT_KEY_FILE,
    IdentityError,
    NodeIdentity,
    address_for_public_key,
    parse_public_key,
    subnet_for_public_key,
)

app = typer.Typer(
    help="hyphal: an encrypted, self-healing, latency-aware IPv6 overlay mesh.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
peers_app = typer.Typer(
    help="List, add and remove peers of the running daemon.", no_args_is_help=True
)
routes_app = typer.Typer(help="Show the running daemon's routing table.", no_args_is_help=True)
app.add_typer(peers_app, name="peers")
app.add_typer(routes_app, name="routes")
app.add_typer(message_app, name="message")

# daemon -----------------------------------------------------------------------------------------


@app.command(context_settings={"allow_extra_args": False})
def run(
    key_file: Annotated[
        Path | None,
        typer.Option(
            "-k",
            "--key-file",
            help=f"Private key file; created if missing [default: {DEFAULT_KEY_FILE}]",
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "-c",
            "--config-file",
            help=f"TOML config; keys mirror these flags [default: {DEFAULT_CONFIG_FILE} if it exists]",
        ),
    ] = None,
    peers: Annotated[
        list[str] | None,
        typer.Option(
            "--peers",
            help="Peer URI to keep connected, e.g. tcp://192.0.2.6:9651 or tcp://[2001:db8::1]:9651. Repeat, or list several after one --peers.",
        ),
    ] = None,
    tcp_listen_port: Annotated[
        int | None,
        typer.Option("-t", "--tcp-listen-port", help="TCP port for inbound peers [default: 9651]"),
    ] = None,
    listen_address: Annotated[
        str | None,
        typer.Option("--listen-address", help="Address to accept peers on [default: all]"),
    ] = None,
    api_addr: Annotated[
        str | None,
        typer.Option("--api-addr", help="Where the HTTP API listens [default: 127.0.0.1:8989]"),
    ] = None,
    no_tun: Annotated[
        bool, typer.Option("--no-tun", help="No TUN device: route and carry messages only.")
    ] = False,
    tun_name: Annotated[
        str | None, typer.Option("--tun-name", help="TUN device name [default: hyphal0]")
    ] = None,
    tun_mtu: Annotated[int | None, typer.Option("--tun-mtu", help="TUN MTU (1280..65535)")] = None,
    network_name: Annotated[
        str | None,
        typer.Option("--network-name", help="Private network name (with --network-key-file)."),
    ] = None,
    network_key_file: Annotated[
        Path | None,
        typer.Option("--network-key-file", help="File holding the 32-byte private network key."),
    ] = None,
    metrics_api_address: Annotated[
        str | None,
        typer.Option("--metrics-api-address", help="Serve Prometheus metrics on host:port."),
    ] = None,
    message_store: Annotated[
        Path | None,
        typer.Option(
            "--message-store", help="Directory for a persistent message inbox/outbox (SQLite)."
        ),
    ] = None,
    max_links: Annotated[
        int | None,
        typer.Option("--max-links", help="Most established peer links at once [default: 256]"),
    ] = None,
    forward_dir: Annotated[
        Path | None,
        typer.Option("--forward-dir", help="Directory allowed for topic forward sockets."),
    ] = None,
    debug: Annotated[bool, typer.Option("-d", "--debug", help="Debug logging.")] = False,
    quiet: Annotated[bool, typer.Option("--silent", help="Log warnings and errors only.")] = False,
) -> None:
    """Run the hyphal daemon: join the mesh and serve the local API."""
    from hyphal.daemon import run_daemon, setup_logging

    setup_logging(debug, quiet)
    try:
        if config_file is not None:
            base = load_config_file(config_file)
        elif DEFAULT_CONFIG_FILE.exists():
            base = load_config_file(DEFAULT_CONFIG_FILE)
        else:
            base = NodeConfig()
        config = base.with_overrides(
            key_file=key_file,
            peers=parse_peers(peers) if peers else None,
            tcp_listen_port=tcp_listen_port,
            listen_address=listen_address,
            api_addr=api_addr,
            no_tun=True if no_tun else None,
            tun_name=tun_name,
            tun_mtu=tun_mtu,
            network_name=network_name,
            network_key_file=network_key_file,
            metrics_api_address=metrics_api_address,
            message_store=message_store,
            max_links=max_links,
            forward_dir=forward_dir,
        ).validate()
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    raise typer.Exit(run_daemon(config))


# keys -----------------------------------------------------------------------------------------


@app.command()
def inspect(
    public_key: Annotated[
        str | None, typer.Argument(help="Hex public key; default: the key file's.")
    ] = None,
    key_file: KeyFile = DEFAULT_KEY_FILE,
    as_json: JsonFlag = False,
) -> None:
    """Show a public key, its overlay address and /64 subnet."""
    try:
        key = parse_public_key(public_key) if public_key else NodeIdentity.load(key_file).public_key
    except IdentityError as exc:
        raise fail(str(exc)) from None
    info = {
        "publicKey": key.hex(),
        "address": str(address_for_public_key(key)),
        "subnet": str(subnet_for_public_key(key)),
    }
    if as_json:
        print_json(info)
    else:
        out.print(
            f"Public key: {info['publicKey']}\nAddress:    {info['address']}\nSubnet:     {info['subnet']}"
        )


@app.command("generate-keys")
def generate_keys(
    key_file: KeyFile = DEFAULT_KEY_FILE,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key file.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a new node key file (mode 0600)."""
    identity = NodeIdentity.generate()
    try:
        identity.save(key_file, overwrite=force)
    except IdentityError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write {key_file}: {exc.strerror}") from None
    if as_json:
        print_json(
            {
                "keyFile": str(key_file),
                "publicKey": identity.public_key.hex(),
                "address": str(identity.address),
            }
        )
    else:
        out.print(
            f"Wrote {key_file}\nPublic key: {identity.public_key.hex()}\nAddress:    {identity.address}"
        )


# peers ----------------------------------------------------------------------------------------


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


# routes -----------------------------------------------------------------------------------------


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


# ping -----------------------------------------------------------------------------------------


@app.command()
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


@app.command()
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


@app.command()
def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the nodes running afterwards.")
    ] = False,
) -> None:
    """Start a local 4-node mesh and show convergence, a multi-hop ping and a reroute."""
    from hyphal.demo import run_demo

    raise typer.Exit(run_demo(keep))


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _expand_multi_value_peers(argv: list[str]) -> list[str]:
    """Mycelium-style `--peers A B C` becomes `--peers A --peers B --peers C`."""
    result: list[str] = []
    in_peers = False
    for arg in argv:
        if arg == "--peers":
            in_peers = True
            continue
        if in_peers and "://" in arg and not arg.startswith("-"):
            result += ["--peers", arg]
            continue
        in_peers = False
        result.append(arg)
    return result


def main() -> None:
    try:
        from hyphal.sim.command import sim  # type: ignore[import-not-found,unused-ignore]

        app.command(help="Simulate the real router on thousands of nodes.")(sim)
    except ImportError:
        pass
    app(args=_expand_multi_value_peers(sys.argv[1:]), prog_name="hyphal")
