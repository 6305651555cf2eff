"""`hyphal network create`, `hyphal invite`, `hyphal join` and `hyphal network revoke`: private
networks with admission control, and adding a machine with one command (docs/membership.md).

* ``network create NAME`` writes a network key and an admin key (each 0600; the admin key in a
  directory of its own, to back up and keep offline) and this node's config and admission.
* ``invite`` prints a token (a secret) that admits one machine; signed with the admin key, or
  with this node's key when its admission carries the INVITER flag.
* ``join TOKEN`` writes the key, network key, admission and config (keeping any that exist), then
  starts the daemon (systemd, or ``--foreground``) and waits until the network has let it in.
* ``network revoke NAME`` signs a revocation with the admin key and hands it to the daemon,
  which gossips it; every member closes and refuses the revoked key's links.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from hyphal.cli.common import (
    EXIT_RUNTIME,
    EXIT_USAGE,
    ApiAddr,
    JsonFlag,
    api_failure,
    client,
    err,
    fail,
    out,
    print_json,
)
from hyphal.client import ApiError, default_api_addr
from hyphal.config import (
    ConfigError,
    NodeConfig,
    default_config_file,
    load_config_file,
    read_network_key,
)
from hyphal.crypto.signing import XEdDSASigner
from hyphal.filemodes import private_dir, replace_private
from hyphal.identity import IdentityError, NodeIdentity, parse_public_key
from hyphal.membership import admission, invites
from hyphal.membership import token as token_mod
from hyphal.membership.record import is_label
from hyphal.membership.token import InviteToken, TokenError
from hyphal.systemd import SYSTEMD_RUNNING_MARKER, ServiceError, apply, plan

network_app = typer.Typer(
    help="Private networks with admission control: create one, revoke a member.",
    no_args_is_help=True,
)

SERVICE_STATE = Path("/var/lib/hyphal")
_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
JOIN_WAIT_S = 60.0


def parse_duration(text: str) -> int:
    """``90s``, ``30m``, ``24h``, ``7d`` (or plain seconds) -> seconds; ValueError otherwise."""
    m = _DURATION.fullmatch(text.strip())
    if m is None or int(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 24h or 7d")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _default_config_dir() -> Path:
    return default_config_file().parent


def admin_key_path(config_dir: Path, network: str) -> Path:
    """Where `network create` puts the admin key: a 0700 directory of its own."""
    return config_dir / "admin" / f"{network}.admin.key"


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(path)


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _config_lines(values: dict[str, Any]) -> str:
    lines = []
    for key, value in values.items():
        if isinstance(value, (list, tuple)):
            lines.append(f"{key} = [{', '.join(_toml_str(str(v)) for v in value)}]")
        elif isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f"{key} = {_toml_str(str(value))}")
    return "\n".join(lines) + "\n"


def _load_config(path: Path) -> NodeConfig | None:
    if not path.exists():
        return None
    try:
        return load_config_file(path)
    except ConfigError as exc:
        raise fail(f"{exc}; fix it or pass another --config-dir", EXIT_USAGE) from None


def _load_key(path: Path) -> tuple[NodeIdentity, bool]:
    try:
        existed = path.exists()
        return NodeIdentity.load_or_create(path), not existed
    except (IdentityError, OSError) as exc:
        raise fail(f"node key {path}: {exc}") from None


ConfigDir = Annotated[
    Path | None,
    typer.Option(
        "--config-dir",
        help="Where hyphal.toml goes [default: /etc/hyphal as root, else ~/.config/hyphal]",
    ),
]


# --------------------------------------------------------------------------- network create


@network_app.command("create")
def network_create(
    name: Annotated[
        str, typer.Argument(help="Network name (2-64 bytes; part of every signature).")
    ],
    config_dir: ConfigDir = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "-k",
            "--key-file",
            help="This node's key (created if missing) [default: the config's key_file, else "
            "CONFIG_DIR/priv_key.bin]",
        ),
    ] = None,
    admin_key_file: Annotated[
        Path | None,
        typer.Option(
            "--admin-key-file",
            help="Where the admin key goes [default: CONFIG_DIR/admin/NAME.admin.key]",
        ),
    ] = None,
    member_name: Annotated[
        str | None, typer.Option("--name", help="This node's member name.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a private network: network key, admin key, and this node as its first member.

    Writes the network key (0600) next to the node key, the admin key (0600) in a directory of
    its own, this node's admission, and network_name, network_key_file, admin_keys and
    admission_file into the config (added to an existing config that has no network yet).
    Run again with the same NAME, it changes nothing.
    """
    if not 2 <= len(name.encode()) <= 64:
        raise fail("the network name must be 2 to 64 bytes long", EXIT_USAGE)
    if member_name is not None and not is_label(member_name):
        raise fail(f"--name {member_name!r} must be a DNS label (a-z, 0-9, inner '-')", EXIT_USAGE)
    config_dir = (config_dir or _default_config_dir()).absolute()
    config_path = config_dir / "hyphal.toml"
    existing = _load_config(config_path)
    admin_path = (admin_key_file or admin_key_path(config_dir, name)).absolute()
    if existing is not None and existing.network_name is not None:
        if existing.network_name != name or not existing.admin_keys:
            raise fail(
                f"{config_path} already belongs to network {existing.network_name!r}; pass "
                "another --config-dir for a second network",
                EXIT_USAGE,
            )
        _report_create(name, existing, config_path, admin_path, created=False, as_json=as_json)
        return
    if key_file is None:
        key_file = existing.key_file if existing is not None else config_dir / "priv_key.bin"
    key_file = key_file.absolute()
    identity, _ = _load_key(key_file)
    if admin_path.exists():
        raise fail(
            f"{admin_path} exists: an admin key of an earlier network? Move it away or pass "
            "--admin-key-file",
            EXIT_USAGE,
        )
    private_dir(admin_path.parent, "admin key directory")
    admin = NodeIdentity.generate()
    replace_private(admin_path, admin.private_bytes())
    network_key_file = key_file.parent / f"{name}.network.key"
    if not network_key_file.exists():
        replace_private(network_key_file, os.urandom(32))
    admission_file = key_file.parent / f"{name}.admission"
    _write_public(
        admission_file,
        invites.self_admission(admin, name, identity.public_key, int(time.time())),
    )
    values: dict[str, Any] = {}
    if existing is None:
        values["key_file"] = str(key_file)
    values |= {
        "network_name": name,
        "network_key_file": str(network_key_file),
        "admin_keys": [admin.public_key.hex()],
        "admission_file": str(admission_file),
    }
    if member_name is not None and (existing is None or existing.member_name is None):
        values["member_name"] = member_name
    text = _config_lines(values)
    if existing is not None:
        text = config_path.read_text().rstrip("\n") + "\n# hyphal network create\n" + text
    else:
        text = (
            "# hyphal network create: this node's config (keys as in 'hyphal run --help')\n" + text
        )
    _write_public(config_path, text.encode())
    config = load_config_file(config_path)
    _report_create(name, config, config_path, admin_path, created=True, as_json=as_json)


def _report_create(
    name: str,
    config: NodeConfig,
    config_path: Path,
    admin_path: Path,
    *,
    created: bool,
    as_json: bool,
) -> None:
    if as_json:
        print_json(
            {
                "network": name,
                "created": created,
                "config": str(config_path),
                "networkKeyFile": str(config.network_key_file),
                "adminKeyFile": str(admin_path),
                "adminPublicKeys": [k.hex() for k in config.admin_keys],
                "admissionFile": str(config.admission_file),
            }
        )
        return
    if not created:
        out.print(
            f"network {name!r} already set up in {config_path}; nothing changed", highlight=False
        )
        return
    out.print(f"created private network {name!r}", highlight=False)
    out.print(f"  config:      {config_path}", highlight=False)
    out.print(f"  network key: {config.network_key_file} (0600, secret)", highlight=False)
    out.print(f"  admin key:   {admin_path} (0600, secret)", highlight=False)
    err.print(
        "[bold yellow]Back up the admin key now and keep it offline.[/] It admits and revokes "
        "members; this node can invite without it (its admission has the INVITER flag). If it "
        "is lost, nobody can revoke members (docs/membership.md).",
        highlight=False,
    )
    out.print(
        f"next: start the node (hyphal run --config-file {config_path}), then on it: "
        "hyphal invite --peer tcp://THIS-HOST:PORT",
        markup=False,
        highlight=False,
    )


# --------------------------------------------------------------------------- invite


def invite(
    member_name: Annotated[
        str, typer.Option("--name", help="Suggested name for the new member.")
    ] = "",
    region: Annotated[str, typer.Option("--region", help="Suggested region.")] = "",
    role: Annotated[str, typer.Option("--role", help="Suggested role (peer or client).")] = "",
    expires: Annotated[
        str,
        typer.Option("--expires", help="How long the invite can be redeemed (90s, 30m, 24h, 7d)."),
    ] = "24h",
    uses: Annotated[
        int,
        typer.Option("--uses", help="How many machines may join: one single-use token each."),
    ] = 1,
    peers: Annotated[
        list[str] | None,
        typer.Option(
            "--peer",
            help="Bootstrap peer URI the joiner dials (repeatable) [default: the endpoints in "
            "this node's member record, else its listen address if it is a specific one]",
        ),
    ] = None,
    inviter: Annotated[
        bool, typer.Option("--inviter", help="Let the new member invite others too.")
    ] = False,
    config_file: Annotated[
        Path | None,
        typer.Option("--config-file", help="This node's config [default: the default config file]"),
    ] = None,
    admin_key_file: Annotated[
        Path | None,
        typer.Option(
            "--admin-key-file",
            help="Sign with this admin key [default: CONFIG_DIR/admin/NETWORK.admin.key if it "
            "exists, else this node's key when its admission allows inviting]",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print a token that admits one machine to this private network (a secret).

    The token holds the network name and key, the admin public keys, bootstrap peers, the
    suggested name, region and role, and an invite that expires. 'hyphal join TOKEN' on the
    new machine does the rest. Each token is single-use: the network refuses a second
    redemption and a redemption after the expiry.
    """
    path = (config_file or default_config_file()).absolute()
    config = _load_config(path)
    if config is None or config.network_name is None or not config.admin_keys:
        raise fail(
            f"{path} has no private network with admin keys; create one with "
            "'hyphal network create NAME' (or pass --config-file)",
            EXIT_USAGE,
        )
    try:
        ttl = parse_duration(expires)
    except ValueError as exc:
        raise fail(f"--expires: {exc}", EXIT_USAGE) from None
    if not 1 <= uses <= 100:
        raise fail("--uses must be 1..100", EXIT_USAGE)
    for what, value in (("--name", member_name), ("--region", region), ("--role", role)):
        if value and not is_label(value):
            raise fail(f"{what} {value!r} must be a DNS label (a-z, 0-9, inner '-')", EXIT_USAGE)
    issuer, via = _issuer(config, path, admin_key_file, inviter)
    node_key = NodeIdentity.load(config.key_file).public_key
    bootstrap = tuple(peers or _own_endpoints(config, node_key))
    if not bootstrap:
        raise fail(
            "no bootstrap peer: this node listens on every address; say where the new machine "
            "can reach it with --peer tcp://HOST:PORT",
            EXIT_USAGE,
        )
    network_key = read_network_key(config.network_key_file) if config.network_key_file else b""
    deadline = int(time.time()) + ttl
    tokens = []
    for _ in range(uses):
        made = invites.new_token(
            issuer,
            network_name=config.network_name,
            network_key=network_key,
            admin_keys=config.admin_keys,
            peers=bootstrap,
            expires=deadline,
            name=member_name,
            region=region,
            role=role,
            inviter=inviter,
        )
        try:
            tokens.append(token_mod.encode(made))
        except TokenError as exc:
            raise fail(str(exc), EXIT_USAGE) from None
    if as_json:
        print_json(
            {
                "tokens": tokens,
                "network": config.network_name,
                "expires": deadline,
                "peers": list(bootstrap),
                "signedBy": via,
                "secret": True,
            }
        )
        return
    err.print(
        "[bold yellow]This token is a secret:[/] it holds the network key and admits one "
        f"machine until {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(deadline))}. "
        "Send it over a private channel.",
        highlight=False,
    )
    for t in tokens:
        typer.echo(t)
    err.print(f"on the new machine: hyphal join TOKEN (signed by {via})", highlight=False)


def _issuer(
    config: NodeConfig, path: Path, admin_key_file: Path | None, inviter: bool
) -> tuple[NodeIdentity, str]:
    name = config.network_name or ""
    candidate = admin_key_file or admin_key_path(path.parent, name)
    if admin_key_file is not None or candidate.exists():
        try:
            admin = NodeIdentity.load(candidate)
        except (IdentityError, OSError) as exc:
            raise fail(f"admin key {candidate}: {exc}", EXIT_USAGE) from None
        if admin.public_key not in config.admin_keys:
            raise fail(f"{candidate} is not one of this network's admin keys", EXIT_USAGE)
        return admin, f"the admin key {candidate}"
    try:
        node = NodeIdentity.load(config.key_file)
        raw = config.own_admission()
        adm = None if raw is None else admission.decode_admission(raw)
    except (IdentityError, ConfigError, ValueError) as exc:
        raise fail(f"cannot sign an invite: {exc}") from None
    if adm is None or adm.member != node.public_key or not adm.invite.inviter:
        raise fail(
            "this node may not invite: give the admin key (--admin-key-file), or ask an admin "
            "for an invite with --inviter",
            EXIT_USAGE,
        )
    if inviter:
        raise fail("only an admin key can issue --inviter invites", EXIT_USAGE)
    return node, "this node's key (an inviter member)"


def _own_endpoints(config: NodeConfig, node_key: bytes) -> list[str]:
    """This node's public endpoints from its member record (via the API, if the daemon runs),
    else its listen address when that is a specific one; each pinned to the node key."""
    pin = f"?key={node_key.hex()}"
    try:
        rows = client(config.api_addr, timeout=3.0).get("/members")
        mine = next((r for r in rows if r.get("self")), None)
        endpoints = [str(e) for e in (mine or {}).get("endpoints", [])]
    except (ApiError, typer.Exit, AttributeError, TypeError):
        endpoints = []
    if endpoints:
        return [e if "?" in e or "://" not in e else e + pin for e in endpoints]
    host = config.listen_address
    if host in ("::", "0.0.0.0", ""):
        return []
    shown = f"[{host}]" if ":" in host else host
    return [f"tcp://{shown}:{config.tcp_listen_port}{pin}"]


# --------------------------------------------------------------------------- join


def join(
    token: Annotated[str, typer.Argument(help="The token 'hyphal invite' printed.")],
    foreground: Annotated[
        bool,
        typer.Option("--foreground", help="Run the daemon here instead of as a systemd service."),
    ] = False,
    config_dir: ConfigDir = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "-k",
            "--key-file",
            help=f"This node's key, created if missing [default: {SERVICE_STATE}/priv_key.bin "
            "for the service, CONFIG_DIR/priv_key.bin with --foreground]",
        ),
    ] = None,
    member_name: Annotated[
        str | None, typer.Option("--name", help="Member name [default: the token's suggestion]")
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="Our region, e.g. fra [default: the token's suggestion]"),
    ] = None,
    api_addr: Annotated[
        str | None, typer.Option("--api-addr", help="API address written into a new config.")
    ] = None,
    tcp_listen_port: Annotated[
        int | None, typer.Option("--tcp-listen-port", help="Peer port written into a new config.")
    ] = None,
    no_tun: Annotated[
        bool, typer.Option("--no-tun", help="Write no_tun = true into a new config (no root).")
    ] = False,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the network to let us in.")
    ] = JOIN_WAIT_S,
    as_json: JsonFlag = False,
) -> None:
    """Join a private network with a token from 'hyphal invite' (one command).

    Writes the node key, the network key (0600), this node's admission and the config, keeping
    any that already exist (running it again is harmless). Then starts the daemon: as the
    systemd service where systemd runs, or here with --foreground. It waits until the network
    has admitted the node and it has routes, and prints its name and address. A used or
    expired token is refused with the reason.
    """
    try:
        t = token_mod.decode(token)
    except TokenError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    now = time.time()
    if invites.expired(t, now):
        raise fail(
            "this invite has expired (at "
            f"{time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(t.invite.expires))}); every "
            "member refuses it: ask for a new one with 'hyphal invite'",
            EXIT_RUNTIME,
        )
    if region is not None and not is_label(region):
        raise fail(f"--region {region!r}: a region is a DNS label, e.g. fra", EXIT_USAGE)
    service = not foreground
    if service and not SYSTEMD_RUNNING_MARKER.is_dir():
        raise fail(
            "systemd is not running here: run 'hyphal join TOKEN --foreground' to run the "
            "daemon in this terminal (or under your own supervisor)",
            EXIT_USAGE,
        )
    if service and os.geteuid() != 0:
        raise fail("installing the service needs root (sudo), or use --foreground", EXIT_USAGE)
    config_dir = (config_dir or _default_config_dir()).absolute()
    config_path = config_dir / "hyphal.toml"
    state = SERVICE_STATE if service else config_dir
    config, wrote = _write_join_files(
        t,
        config_path,
        key_file or state / "priv_key.bin",
        member_name=member_name,
        region=region,
        api_addr=api_addr,
        tcp_listen_port=tcp_listen_port,
        no_tun=no_tun,
        service=service,
    )
    for line in wrote:
        err.print(line, highlight=False, markup=False)
    if _daemon_answers(config.api_addr):  # joined before and running: just report
        err.print(f"a daemon already answers at {config.api_addr}", highlight=False)
        _report_join(_wait_joined(config.api_addr, wait), as_json)
        return
    if service:
        _start_service(config_path)
        result = _wait_joined(config.api_addr, wait)
        _report_join(result, as_json)
        return
    _run_foreground(config, config_path, wait, as_json)


def _daemon_answers(api_addr: str) -> bool:
    try:
        client(api_addr, timeout=2.0).get("/admission")
    except (ApiError, typer.Exit):
        return False
    return True


def _write_join_files(
    t: InviteToken,
    config_path: Path,
    key_file: Path,
    *,
    member_name: str | None,
    api_addr: str | None,
    tcp_listen_port: int | None,
    no_tun: bool,
    service: bool,
    region: str | None = None,
) -> tuple[NodeConfig, list[str]]:
    existing = _load_config(config_path)
    wrote: list[str] = []
    if existing is not None:
        if existing.network_name != t.network_name:
            raise fail(
                f"{config_path} exists and belongs to "
                f"{'the public network' if existing.network_name is None else repr(existing.network_name)}"
                f", not {t.network_name!r}; pass another --config-dir",
                EXIT_USAGE,
            )
        key_file = existing.key_file
    identity, created = _load_key(key_file.absolute())
    if created:
        wrote.append(f"created node key {key_file} (0600)")
    base = key_file.absolute().parent
    network_key_file = (
        existing.network_key_file
        if existing is not None and existing.network_key_file is not None
        else base / f"{t.network_name}.network.key"
    )
    if not network_key_file.exists():
        replace_private(network_key_file, t.network_key)
        wrote.append(f"wrote network key {network_key_file} (0600)")
    admission_file = (
        existing.admission_file
        if existing is not None and existing.admission_file is not None
        else base / f"{t.network_name}.admission"
    )
    if not admission_file.exists():
        _write_public(
            admission_file, invites.redeem_token(t, identity.public_key, int(time.time()))
        )
        wrote.append(f"redeemed the invite: admission {admission_file}")
    if existing is not None:
        wrote.append(f"kept {config_path} (exists)")
        return existing, wrote
    name = member_name if member_name is not None else t.name
    values: dict[str, Any] = {
        "key_file": str(key_file.absolute()),
        "network_name": t.network_name,
        "network_key_file": str(network_key_file),
        "admin_keys": [k.hex() for k in t.admin_keys],
        "admission_file": str(admission_file),
        "peers": list(t.peers),
    }
    if name:
        values["member_name"] = name
    region = region if region is not None else t.region
    if region:
        values["region"] = region
    if t.role:
        values["role"] = (
            t.role
        )  # the invite's suggestion: a client dials out only (docs/routing.md)
    if api_addr is not None:
        values["api_addr"] = api_addr
    if tcp_listen_port is not None:
        values["tcp_listen_port"] = tcp_listen_port
    if no_tun:
        values["no_tun"] = True
    if service:
        values["message_store"] = str(SERVICE_STATE / "messages")
    header = "# hyphal join: this node's config (keys as in 'hyphal run --help')\n"
    _write_public(config_path, (header + _config_lines(values)).encode())
    wrote.append(f"wrote {config_path}")
    try:
        return load_config_file(config_path), wrote
    except ConfigError as exc:
        raise fail(f"{exc} (from the token)", EXIT_USAGE) from None


def _start_service(config_path: Path) -> None:
    try:
        p = plan(config=config_path)
        for line in apply(p):
            err.print(line, highlight=False, markup=False)
    except (ServiceError, OSError) as exc:
        raise fail(f"cannot install the service: {exc}") from None


def _wait_joined(api_addr: str, wait: float, stop: threading.Event | None = None) -> dict[str, Any]:
    """Poll the daemon until the network has admitted us and we have routes (or a refusal)."""
    api = client(api_addr, timeout=3.0)
    deadline = time.monotonic() + wait
    last = "the daemon did not answer"
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        try:
            state = api.get("/admission")
            problem = state.get("problem")
            if problem is not None and "no admission" not in problem and "refused" not in problem:
                return {"joined": False, "error": problem}
            members = api.get("/members")
            routes = api.get("/admin/routes/selected")
            me = next((m for m in members if m.get("self")), None)
            others = [m for m in members if not m.get("self")]
            if problem is None and me is not None and others and routes:
                return {
                    "joined": True,
                    "name": me.get("name", ""),
                    "address": me.get("address", ""),
                    "members": len(members),
                    "routes": len(routes),
                }
            last = problem or "waiting for routes and the other members' records"
        except ApiError as exc:
            last = str(exc)
        time.sleep(0.3)
    return {"joined": False, "error": f"not admitted within {wait:.0f} s: {last}"}


def _report_join(result: dict[str, Any], as_json: bool) -> None:
    if not result["joined"]:
        raise fail(f"join refused: {result['error']}")
    if as_json:
        print_json(result)
        return
    name = result["name"] or "(unnamed)"
    out.print(
        f"joined: {name} {result['address']} ({result['members']} members, "
        f"{result['routes']} routes)",
        markup=False,
        highlight=False,
    )


def _run_foreground(config: NodeConfig, config_path: Path, wait: float, as_json: bool) -> None:
    from hyphal.daemon import run_daemon, setup_logging

    setup_logging(level=config.log_level, fmt=config.log_format or "text")
    outcome: dict[str, Any] = {}
    stop = threading.Event()

    def watch() -> None:
        result = _wait_joined(config.api_addr, wait, stop)
        if stop.is_set():
            return
        outcome.update(result)
        try:
            _report_join(result, as_json)
        except typer.Exit:
            os.kill(os.getpid(), signal.SIGTERM)  # refused: stop the daemon, exit 1

    watcher = threading.Thread(target=watch, name="join-watch", daemon=True)
    watcher.start()
    code = run_daemon(config, "from the config file", lambda: load_config_file(config_path))
    stop.set()
    if outcome and not outcome.get("joined"):
        raise typer.Exit(EXIT_RUNTIME)
    raise typer.Exit(code)


# --------------------------------------------------------------------------- revoke


def revoke(
    member: Annotated[str, typer.Argument(help="Member name, or its hex public key.")],
    admin_key_file: Annotated[
        Path | None,
        typer.Option(
            "--admin-key-file",
            help="The admin key [default: CONFIG_DIR/admin/NETWORK.admin.key]",
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config-file", help="This node's config [default: the default config file]"),
    ] = None,
    api_addr: ApiAddr = default_api_addr(),
    as_json: JsonFlag = False,
) -> None:
    """Revoke a member for good: sign a revocation with the admin key and gossip it.

    Every member drops the member's record and admission and closes and refuses its links
    within seconds. It cannot be undone: the machine needs a new key and a new invite.
    """
    path = (config_file or default_config_file()).absolute()
    config = _load_config(path)
    if config is None or config.network_name is None or not config.admin_keys:
        raise fail(f"{path} has no private network with admin keys", EXIT_USAGE)
    key_path = admin_key_file or admin_key_path(path.parent, config.network_name)
    try:
        admin = NodeIdentity.load(key_path)
    except (IdentityError, OSError) as exc:
        raise fail(f"revoking needs the admin key: {key_path}: {exc}", EXIT_USAGE) from None
    if admin.public_key not in config.admin_keys:
        raise fail(f"{key_path} is not one of this network's admin keys", EXIT_USAGE)
    api = client(api_addr)
    try:
        target = parse_public_key(member)
        shown = member
    except IdentityError:
        try:
            row = api.get(f"/members/{api.quote(member)}")
        except ApiError as exc:
            raise api_failure(exc) from None
        target = bytes.fromhex(row["publicKey"])
        shown = f"{member} ({row['address']})"
    rev = admission.make_revocation(
        XEdDSASigner(admin.private_bytes()),
        admin.public_key,
        config.network_name.encode(),
        target,
        int(time.time()),
    )
    try:
        result = api.json(api.post("/admission/revocations", {"revocation": rev.encode().hex()}))
    except ApiError as exc:
        raise api_failure(exc) from None
    if as_json:
        print_json({"revoked": target.hex(), "result": result.get("result")})
        return
    out.print(
        f"revoked {shown}: {result.get('result')}; its links close everywhere", highlight=False
    )


network_app.command("revoke")(revoke)


def register(app: typer.Typer) -> None:
    """Add ``network``, ``invite`` and ``join`` to the ``hyphal`` command."""
    app.add_typer(network_app, name="network")
    app.command()(invite)
    app.command()(join)
