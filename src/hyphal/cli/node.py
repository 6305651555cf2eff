"""`hyphal run`, `inspect`, `generate-keys`, `generate-network-key` and `demo`: commands that
need no running daemon."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer

from hyphal.cli.common import (
    EXIT_RUNTIME,
    EXIT_USAGE,
    JsonFlag,
    KeyFile,
    fail,
    out,
    print_json,
)
from hyphal.cli.peers import check_peer_uri
from hyphal.config import (
    DEFAULT_API_ADDR,
    DEFAULT_CONFIG_FILE,
    DEFAULT_DNS_PORT,
    DEFAULT_MAX_LINKS,
    DEFAULT_TCP_PORT,
    DEFAULT_TUN_NAME,
    NETWORK_KEY_LEN,
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

# The flag a user types for each config key, so errors name what they typed.
FLAG_FOR_KEY = {
    "key_file": "--key-file",
    "peers": "--peers",
    "tcp_listen_port": "--tcp-listen-port",
    "listen_address": "--listen-address",
    "api_addr": "--api-addr",
    "tun_name": "--tun-name",
    "tun_mtu": "--tun-mtu",
    "network_name": "--network-name",
    "network_key_file": "--network-key-file",
    "metrics_api_address": "--metrics-api-address",
    "message_store": "--message-store",
    "max_links": "--max-links",
    "forward_dir": "--forward-dir",
    "role": "--role",
    "listen": "--listen",
    "member_name": "--name",
    "region": "--region",
    "dns_port": "--dns-port",
}


def name_flags(message: str, from_flags: set[str]) -> str:
    """``message`` with a config key replaced by its flag when the value came from that flag."""
    for key in sorted(from_flags, key=len, reverse=True):
        flag = FLAG_FOR_KEY.get(key)
        if flag is not None and (message.startswith(f"{key} ") or message.startswith(f"{key}:")):
            return flag + message[len(key) :]
    return message


def default_config_file() -> Path | None:
    """The default config file if there is one; ConfigError if it cannot even be looked at."""
    try:
        return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None
    except OSError as exc:
        raise ConfigError(
            f"cannot look at the default config file {DEFAULT_CONFIG_FILE}: {exc.strerror}; "
            "give a config file with -c FILE, or set HOME"
        ) from None


def effective_config(config_file: Path | None, **flags: Any) -> tuple[NodeConfig, Path | None]:
    """The config `hyphal run` would use: defaults, then the file, then the flags (validated).

    ConfigError messages name the flag when the bad value came from a flag."""
    path = config_file if config_file is not None else default_config_file()
    base = load_config_file(path) if path is not None else NodeConfig()
    given = {k for k, v in flags.items() if v is not None}
    raw_peers = flags.get("peers")
    if raw_peers:
        for peer in raw_peers:
            problem = check_peer_uri(peer)
            if problem is not None:
                raise ConfigError(f"--peers: {problem}")
        flags["peers"] = parse_peers(raw_peers)
    try:
        return base.with_overrides(**flags).validate(), path
    except ConfigError as exc:
        raise ConfigError(name_flags(str(exc), given)) from None


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
            help=f"TOML config; keys mirror these flags, flags win [default: {DEFAULT_CONFIG_FILE} if it exists]. (-c is --count in 'hyphal ping'.)",
        ),
    ] = None,
    peers: Annotated[
        list[str] | None,
        typer.Option(
            "--peers",
            help="Peer URI to keep connected, e.g. tcp://192.0.2.6:9651 or tcp://[2001:db8::1]:9651. Repeat, or list several after one --peers. [default: none]",
            metavar="URI",
        ),
    ] = None,
    tcp_listen_port: Annotated[
        int | None,
        typer.Option(
            "-t",
            "--tcp-listen-port",
            help=f"TCP port for inbound peers; 0 picks a free one [default: {DEFAULT_TCP_PORT}]. (-t is --topic in 'hyphal message'.)",
            metavar="PORT",
        ),
    ] = None,
    listen_address: Annotated[
        str | None,
        typer.Option(
            "--listen-address",
            help="Local address to accept peers on (an address of this machine) [default: :: (all)]",
            metavar="ADDR",
        ),
    ] = None,
    api_addr: Annotated[
        str | None,
        typer.Option(
            "--api-addr",
            help=f"Where the HTTP API listens [default: {DEFAULT_API_ADDR}]",
            metavar="HOST:PORT",
        ),
    ] = None,
    no_tun: Annotated[
        bool,
        typer.Option(
            "--no-tun", help="No TUN device: route and carry messages only [default: TUN on]"
        ),
    ] = False,
    no_route_audit: Annotated[
        bool,
        typer.Option(
            "--no-route-audit",
            help="Do not probe the routes in use end to end (no demotion of lying next hops) [default: audit on]",
        ),
    ] = False,
    tun_name: Annotated[
        str | None,
        typer.Option(
            "--tun-name", help=f"TUN device name [default: {DEFAULT_TUN_NAME}]", metavar="NAME"
        ),
    ] = None,
    tun_mtu: Annotated[
        int | None,
        typer.Option("--tun-mtu", help="TUN MTU, 1280..65535 [default: 65535]", metavar="BYTES"),
    ] = None,
    network_name: Annotated[
        str | None,
        typer.Option(
            "--network-name",
            help="Private network name, with --network-key-file [default: the public network]",
            metavar="NAME",
        ),
    ] = None,
    network_key_file: Annotated[
        Path | None,
        typer.Option(
            "--network-key-file",
            help="File holding the 32-byte private network key (make one with 'hyphal generate-network-key FILE') [default: none]",
            metavar="FILE",
        ),
    ] = None,
    metrics_api_address: Annotated[
        str | None,
        typer.Option(
            "--metrics-api-address",
            help="Serve Prometheus metrics on host:port [default: off]",
            metavar="HOST:PORT",
        ),
    ] = None,
    message_store: Annotated[
        Path | None,
        typer.Option(
            "--message-store",
            help="Directory for a persistent message inbox/outbox (SQLite) [default: in memory]",
            metavar="DIR",
        ),
    ] = None,
    max_links: Annotated[
        int | None,
        typer.Option(
            "--max-links",
            help=f"Most established peer links at once [default: {DEFAULT_MAX_LINKS}]",
            metavar="N",
        ),
    ] = None,
    forward_dir: Annotated[
        Path | None,
        typer.Option(
            "--forward-dir",
            help="The only directory topic forward sockets may live in [default: none]",
            metavar="DIR",
        ),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help="peer: relay traffic for others. client: for machines behind NAT or on 4G; dial out only, relay nothing, never used as a transit hop [default: peer]",
            metavar="peer|client",
        ),
    ] = None,
    listen: Annotated[
        bool | None,
        typer.Option(
            "--listen/--no-listen",
            help="Accept inbound peer links on --tcp-listen-port [default: yes for peers, no for clients]",
        ),
    ] = None,
    member_name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Our member name, a DNS label; a template may use {region} and {hostname} "
            "(its first label), e.g. '{region}-{hostname}' [default: none]",
            metavar="NAME",
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region", help="Our region, a DNS label, e.g. fra [default: none]", metavar="REGION"
        ),
    ] = None,
    no_dns: Annotated[
        bool,
        typer.Option(
            "--no-dns",
            help="No DNS server (on by default: the TUN address and 127.0.0.1; docs/dns.md) [default: DNS on]",
        ),
    ] = False,
    dns_port: Annotated[
        int | None,
        typer.Option(
            "--dns-port",
            help=f"Port of the DNS server, UDP and TCP [default: {DEFAULT_DNS_PORT}]",
            metavar="PORT",
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option("-d", "--debug", help="hyphal's debug logging (same as --log-level debug)."),
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

    flags: dict[str, Any] = dict(
        key_file=key_file,
        peers=peers or None,
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
        role=role,
        listen=listen,
        member_name=member_name,
        region=region,
        no_dns=True if no_dns else None,
        dns_port=dns_port,
    )

    def load() -> NodeConfig:
        """The file (read again on SIGHUP) with the command line's flags on top."""
        return effective_config(config_file, **flags)[0]

    try:
        config, source = effective_config(config_file, **flags)
        spec = effective_log_spec(config, log_level, debug, quiet)
        setup_logging(level=spec, fmt=config.log_format or "text")
    except (ConfigError, ValueError) as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    logging.getLogger("hyphal").info(
        "config file %s loaded"
        if source
        else "no config file (%s does not exist): flags and defaults",
        source or DEFAULT_CONFIG_FILE,
    )
    key_source = (
        "from --key-file"
        if key_file is not None
        else "from the config file"
        if config.key_file != DEFAULT_KEY_FILE
        else "the default path"
    )
    reload = load if source is not None else None
    raise typer.Exit(
        run_daemon(config, key_source, reload, None if source is None else str(source))
    )


def inspect(
    public_key: Annotated[
        str | None,
        typer.Argument(help="Hex public key [default: the key file's]", metavar="PUBKEY"),
    ] = None,
    key_file: KeyFile = DEFAULT_KEY_FILE,
    as_json: JsonFlag = False,
) -> None:
    """Show a public key, its overlay address and /64 subnet."""
    try:
        key = parse_public_key(public_key) if public_key else NodeIdentity.load(key_file).public_key
    except IdentityError as exc:
        raise fail(str(exc), EXIT_USAGE if public_key else EXIT_RUNTIME) from None
    info = {
        "publicKey": key.hex(),
        "address": str(address_for_public_key(key)),
        "subnet": str(subnet_for_public_key(key)),
    }
    if as_json:
        print_json(info)
    else:
        out.print(
            f"Public key: {info['publicKey']}\nAddress:    {info['address']}\nSubnet:     {info['subnet']}",
            highlight=False,
        )


def _check_parent(path: Path, may_create: bool) -> None:
    """Refuse to write into a directory that does not exist, except the default key directory
    (created mode 0700, and said so)."""
    parent = path.parent
    if parent.is_dir():
        return
    if may_create:
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        out.print(f"created directory {parent}", highlight=False)
        return
    raise fail(
        f"directory {parent} does not exist; create it first (mkdir -p {parent}) or pick another path",
        EXIT_RUNTIME,
    )


def generate_keys(
    key_file: KeyFile = DEFAULT_KEY_FILE,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key file.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a new node key file (mode 0600); refuses to overwrite one without --force."""
    _check_parent(key_file, may_create=key_file == DEFAULT_KEY_FILE)
    identity = NodeIdentity.generate()
    try:
        identity.save(key_file, overwrite=force, parents=key_file == DEFAULT_KEY_FILE)
    except IdentityError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write {key_file}: {exc.strerror}") from None
    info = {
        "keyFile": str(key_file),
        "publicKey": identity.public_key.hex(),
        "address": str(identity.address),
        "subnet": str(identity.subnet),
    }
    if as_json:
        print_json(info)
    else:
        out.print(
            f"Wrote {key_file}\nPublic key: {info['publicKey']}\nAddress:    {info['address']}"
            f"\nSubnet:     {info['subnet']}",
            highlight=False,
        )


def write_secret(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to a new file with mode 0600 (O_EXCL unless ``overwrite``)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def generate_network_key(
    path: Annotated[
        Path, typer.Argument(help="Where to write the key (mode 0600)", metavar="FILE")
    ],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a private-network key: 32 random bytes as 64 hex characters, mode 0600. Every node
    of the network runs with --network-name NAME --network-key-file FILE (the same file)."""
    _check_parent(path, may_create=False)
    try:
        write_secret(
            path, (secrets.token_bytes(NETWORK_KEY_LEN).hex() + "\n").encode(), overwrite=force
        )
    except FileExistsError:
        raise fail(f"{path} exists; pass --force to replace it") from None
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror}") from None
    if as_json:
        print_json({"networkKeyFile": str(path)})
    else:
        out.print(
            f"Wrote {path} (mode 0600). Copy it to every node of the network, then run:\n"
            f"  hyphal run --network-name NAME --network-key-file {path}",
            highlight=False,
        )


def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the nodes running afterwards.")
    ] = False,
    no_netns: Annotated[
        bool,
        typer.Option(
            "--no-netns",
            help="Only the loopback act: skip the ingress and mapping acts in namespaces.",
        ),
    ] = False,
) -> None:
    """Start a local 4-node mesh and show convergence, a multi-hop ping and a reroute; as root,
    then an ingress in front of nginx in two regions and a worker's traceroute, in namespaces."""
    from hyphal.demo import run_demo

    raise typer.Exit(run_demo(keep, netns=not no_netns))
