"""`hyphal run`, `inspect`, `generate-keys` and `demo`: commands that need no running daemon."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hyphal.cli.common import (
    JsonFlag,
    KeyFile,
    fail,
    out,
    print_json,
)
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
    no_route_audit: Annotated[
        bool,
        typer.Option(
            "--no-route-audit",
            help="Do not probe the routes in use end to end (no demotion of lying next hops).",
        ),
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
    debug: Annotated[
        bool, typer.Option("-d", "--debug", help="hyphal's debug logging (same as --log-level debug).")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--silent", help="Log warnings and errors only (--log-level warning).")
    ] = False,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="Log levels: a level, then logger=level items, e.g. info,hyphal.routing=debug "
            "(levels: debug, info, warning, error) [default: info]",
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option("--log-format", help="Log lines as text or json [default: text]"),
    ] = None,
) -> None:
    """Run the hyphal daemon: join the mesh and serve the local API."""
    from hyphal.daemon import effective_log_spec, run_daemon, setup_logging

    loaded_from: Path | None = None
    try:
        if config_file is not None:
            base, loaded_from = load_config_file(config_file), config_file
        elif DEFAULT_CONFIG_FILE.exists():
            base, loaded_from = load_config_file(DEFAULT_CONFIG_FILE), DEFAULT_CONFIG_FILE
        else:
            base = NodeConfig()
        config = base.with_overrides(
            key_file=key_file,
            peers=parse_peers(peers) if peers else None,
            tcp_listen_port=tcp_listen_port,
            listen_address=listen_address,
            api_addr=api_addr,
            no_tun=True if no_tun else None,
            no_route_audit=True if no_route_audit else None,
            tun_name=tun_name,
            tun_mtu=tun_mtu,
            network_name=network_name,
            network_key_file=network_key_file,
            metrics_api_address=metrics_api_address,
            message_store=message_store,
            max_links=max_links,
            forward_dir=forward_dir,
            log_level=log_level,
            log_format=log_format,
        ).validate()
        spec = effective_log_spec(config, log_level, debug, quiet)
        setup_logging(level=spec, fmt=config.log_format or "text")
    except (ConfigError, ValueError) as exc:
        raise fail(str(exc), 2) from None
    import logging

    logging.getLogger("hyphal").info(
        "config file %s loaded" if loaded_from else "no config file (%s does not exist): flags and defaults",
        loaded_from or DEFAULT_CONFIG_FILE,
    )
    key_source = (
        "from --key-file"
        if key_file is not None
        else "from the config file"
        if config.key_file != DEFAULT_KEY_FILE
        else "the default path"
    )
    raise typer.Exit(run_daemon(config, key_source))


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


def generate_keys(
    key_file: KeyFile = DEFAULT_KEY_FILE,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key file.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a new node key file (mode 0600)."""
    identity = NodeIdentity.generate()
    try:
        identity.save(key_file, overwrite=force, parents=key_file == DEFAULT_KEY_FILE)
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


def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the nodes running afterwards.")
    ] = False,
) -> None:
    """Start a local 4-node mesh and show convergence, a multi-hop ping and a reroute."""
    from hyphal.demo import run_demo

    raise typer.Exit(run_demo(keep))
