"""Daemon configuration: defaults, the TOML config file, and command-line overrides.

Config file keys mirror the command-line flags in snake_case (``peers``, ``tcp_listen_port``,
``api_addr``, ``no_tun``, ``no_route_audit``, ``tun_name``, ``key_file``, ``network_name``,
``network_key_file``, ``max_links``, ``forward_dir``, ``log_level``, ``log_format``,
``member_name``, ``region``, ``member_record_lifetime``, ``role``, ``listen``, ``no_dns``,
``dns_port``, ``admin_keys``, ``admission_file``, ``services_file``, ``ingress_file``, ...; the
``[names]`` table maps static DNS labels to overlay addresses or public keys; ``[[service]]``
tables declare local service instances and ``[service_owners]`` pins service owners,
docs/services.md). A flag given on the command line wins over the file; the file wins over
built-in defaults. The private-network key file is read and checked here too.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import stat
import tomllib
from dataclasses import dataclass, replace
from ipaddress import IPv6Address, ip_address
from pathlib import Path
from typing import Any

from hyphal.dns.names import InvalidName, domain_for, parse_names_table
from hyphal.identity import DEFAULT_KEY_FILE
from hyphal.ingress.spec import IngressSpec, UnwrapSpec, ingress_from_dict, unwrap_from_dict
from hyphal.ingress.spec import SpecError as IngressSpecError
from hyphal.links.endpoint import Endpoint, EndpointError
from hyphal.logs import FORMATS, LogSpecError, parse_spec
from hyphal.membership.admission import AdmissionPolicy
from hyphal.membership.params import DEFAULT_PARAMS as MEMBERSHIP_PARAMS
from hyphal.membership.params import MembershipParams
from hyphal.membership.record import is_label
from hyphal.roles import Role
from hyphal.routing.params import DEFAULT_PARAMS, RoutingParams
from hyphal.services.spec import ServiceSpec, SpecError
from hyphal.services.spec import parse_spec as parse_service

DEFAULT_TCP_PORT = 9651
DEFAULT_API_ADDR = "127.0.0.1:8989"
DEFAULT_TUN_NAME = "hyphal0"
DEFAULT_DNS_PORT = 53
DEFAULT_DNS_LOOPBACK = "127.0.0.1"
SYSTEM_CONFIG_FILE = Path("/etc/hyphal/hyphal.toml")
USER_CONFIG_FILE = Path.home() / ".config" / "hyphal" / "hyphal.toml"


def default_config_file(euid: int | None = None) -> Path:
    """/etc/hyphal/hyphal.toml for root (the system daemon), else the user's ~/.config one."""
    return SYSTEM_CONFIG_FILE if (os.geteuid() if euid is None else euid) == 0 else USER_CONFIG_FILE


DEFAULT_CONFIG_FILE = default_config_file()
DEFAULT_MAX_LINKS = 256
NETWORK_KEY_LEN = 32

log = logging.getLogger("hyphal.config")


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the key and what to do."""


@dataclass(frozen=True)
class NodeConfig:
    """Everything `hyphal run` needs, validated."""

    key_file: Path = DEFAULT_KEY_FILE
    peers: tuple[Endpoint, ...] = ()
    tcp_listen_port: int = DEFAULT_TCP_PORT
    listen_address: str = "::"
    api_addr: str = DEFAULT_API_ADDR
    no_tun: bool = False
    no_route_audit: bool = False
    tun_name: str = DEFAULT_TUN_NAME
    tun_mtu: int | None = None
    network_name: str | None = None
    network_key_file: Path | None = None
    metrics_api_address: str | None = None
    message_store: Path | None = None
    api_token_file: Path | None = None
    max_links: int = DEFAULT_MAX_LINKS
    #: Most prefixes in the routing table (config file only); when it is full, the neighbour
    #: holding most routes loses its own newest ones first (docs/routing.md).
    max_routes: int = DEFAULT_PARAMS.max_routes
    forward_dir: Path | None = None
    log_level: str | None = None  # a spec: "info" or "info,hyphal.routing=debug"
    log_format: str | None = None  # "text" (default) or "json"
    member_name: str | None = None
    """Our member name, or a template of it: ``{region}`` and ``{hostname}`` are expanded by
    :meth:`validate` (see :func:`expand_name`)."""
    region: str | None = None
    #: ``peer`` relays for others; ``client`` (NAT, 4G) dials out only and relays nothing.
    role: str = Role.PEER.value
    #: Accept inbound peer links; None: the role decides (peers listen, clients do not).
    listen: bool | None = None

    @property
    def node_role(self) -> Role:
        return Role.parse(self.role)

    @property
    def listens(self) -> bool:
        """True if the node accepts inbound peer links (``listen``, else its role's default)."""
        return self.node_role.listens_by_default if self.listen is None else self.listen

    #: Advanced: seconds a member record lives unless refreshed (every third of it). Every node
    #: of a mesh should use one value; a shorter one makes vanished members go sooner.
    member_record_lifetime: int = MEMBERSHIP_PARAMS.record_ttl_s
    #: Static DNS names (config file ``[names]`` table): label -> overlay address.
    names: tuple[tuple[str, IPv6Address], ...] = ()
    no_dns: bool = False
    dns_port: int = DEFAULT_DNS_PORT
    #: The zone (default: hyphal.internal, or <network>.internal on a private network).
    dns_domain: str | None = None
    #: The loopback address the DNS server listens on besides the TUN address ("" for none).
    dns_loopback: str = DEFAULT_DNS_LOOPBACK
    #: Register the server and ~domain with systemd-resolved on the TUN link when it runs.
    dns_resolved: bool = True
    #: A private network's admin public keys (config file: hex strings); with them, only
    #: admitted keys become neighbours (docs/membership.md, "Admission").
    admin_keys: tuple[bytes, ...] = ()
    #: This node's admission (written by `hyphal join` or `hyphal network create`).
    admission_file: Path | None = None
    #: Public ingress listeners and transparent unwrap listeners (``[[ingress]]`` and
    #: ``[[unwrap]]`` tables; docs/ingress.md).
    ingress: tuple[IngressSpec, ...] = ()
    unwrap: tuple[UnwrapSpec, ...] = ()
    #: Local service instances from ``[[service]]`` tables (docs/services.md).
    services: tuple[ServiceSpec, ...] = ()
    #: Public network: pinned owner keys of services (``[service_owners]`` name = hex key).
    service_owners: tuple[tuple[str, bytes], ...] = ()
    #: Where runtime-added services, drains and our claims are kept (the daemon defaults it to
    #: services.json beside the key file; None keeps them in memory only).
    services_file: Path | None = None
    #: Where listeners added at run time (``hyphal ingress add``/``unwrap``) are kept (the daemon
    #: defaults it to ingress.json beside the key file; None keeps them in memory only).
    ingress_file: Path | None = None

    def with_overrides(self, **overrides: Any) -> NodeConfig:
        """A copy with every override that is not None applied (flags beat the file)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def network_key(self) -> bytes | None:
        """The 32-byte private-network key, or None on the public network."""
        if self.network_key_file is None:
            return None
        return read_network_key(self.network_key_file)

    def membership_params(self) -> MembershipParams:
        """The membership core's parameters: the defaults with ``member_record_lifetime``."""
        return replace(
            MEMBERSHIP_PARAMS,
            record_ttl_s=self.member_record_lifetime,
            tombstone_ttl_s=max(self.member_record_lifetime, MEMBERSHIP_PARAMS.tombstone_ttl_s),
        )

    def admission_policy(self) -> AdmissionPolicy | None:
        """The admin keys as a policy, or None in a network without admission control."""
        return AdmissionPolicy(frozenset(self.admin_keys)) if self.admin_keys else None

    def own_admission(self) -> bytes | None:
        """The bytes of ``admission_file``, or None (ConfigError if it cannot be read)."""
        if self.admission_file is None:
            return None
        try:
            return self.admission_file.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read admission_file {self.admission_file}: {exc.strerror}"
            ) from exc

    def routing_params(self) -> RoutingParams:
        """The router's parameters: the defaults with this config's routing keys applied."""
        return replace(DEFAULT_PARAMS, max_routes=self.max_routes)

    def validate(self, final: bool = True) -> NodeConfig:
        """This config checked, with the ``member_name`` template expanded; ``final=False`` (a
        config file on its own) lets a template wait for a ``region`` the flags may give."""
        if (self.network_name is None) != (self.network_key_file is None):
            raise ConfigError(
                "--network-name and --network-key-file go together: give both or neither"
            )
        if self.network_name is not None and not 2 <= len(self.network_name.encode()) <= 64:
            raise ConfigError("--network-name must be 2 to 64 bytes long")
        try:
            Role.parse(self.role)
        except ValueError as exc:
            raise ConfigError(f"{exc} (peer relays for others; client dials out only)") from None
        if not 0 <= self.tcp_listen_port < 65536:
            raise ConfigError("tcp_listen_port must be 0..65535 (0 picks a free port)")
        parse_host_port(self.api_addr, "api_addr")
        if self.metrics_api_address:
            parse_host_port(self.metrics_api_address, "metrics_api_address")
        if self.tun_mtu is not None and not 1280 <= self.tun_mtu <= 65535:
            raise ConfigError("tun_mtu must be 1280..65535")
        if not 1 <= self.max_links <= 65535:
            raise ConfigError("max_links must be 1..65535 (established links at once)")
        if not 16 <= self.max_routes <= 1 << 20:
            raise ConfigError("max_routes must be 16..1048576 (prefixes in the routing table)")
        if self.log_level is not None:
            try:
                parse_spec(self.log_level)
            except LogSpecError as exc:
                raise ConfigError(f"log_level: {exc}") from exc
        if self.log_format is not None and self.log_format not in FORMATS:
            raise ConfigError(f"log_format must be one of {', '.join(FORMATS)}")
        if self.forward_dir is not None and not self.forward_dir.is_dir():
            raise ConfigError(
                f"forward_dir {self.forward_dir} is not a directory; topic forward sockets "
                "must live in an existing directory the operator chose"
            )
        if self.admin_keys and self.network_name is None:
            raise ConfigError(
                "admin_keys need a private network: set network_name and network_key_file too"
            )
        self._validate_dns()
        if not MIN_RECORD_LIFETIME <= self.member_record_lifetime <= MAX_RECORD_LIFETIME:
            raise ConfigError(
                f"member_record_lifetime must be {MIN_RECORD_LIFETIME}..{MAX_RECORD_LIFETIME} "
                "seconds"
            )
        if self.region is not None and not is_label(self.region):
            raise ConfigError(
                f"region {self.region!r} must be a DNS label: lowercase a-z, 0-9 and inner '-', "
                "at most 63 characters"
            )
        name = self.member_name
        if name is None or (not final and self.region is None and "{region}" in name):
            if name is not None:
                expand_name(name, "region", "hostname")  # the template's syntax, at least
            return self
        expanded = expand_name(name, self.region, socket.gethostname())
        return self if expanded == name else replace(self, member_name=expanded)

    def _validate_dns(self) -> None:
        try:
            domain_for(self.network_name, self.dns_domain)
        except InvalidName as exc:
            raise ConfigError(str(exc)) from None
        if not 0 <= self.dns_port < 65536:
            raise ConfigError("dns_port must be 0..65535 (53 is the DNS port; 0 picks a free one)")
        if self.dns_loopback:
            try:
                ip_address(self.dns_loopback)
            except ValueError:
                raise ConfigError(
                    f'dns_loopback must be an IP address such as 127.0.0.1 or ::1 (or "" for '
                    f"none), got {self.dns_loopback!r}"
                ) from None


MIN_RECORD_LIFETIME = 10
MAX_RECORD_LIFETIME = 7 * 86400
_FIELD = re.compile(r"\{([^{}]*)\}")


def hostname_label(hostname: str) -> str:
    """The first label of ``hostname`` as a DNS label: lowercased, every other character '-'."""
    first = hostname.split(".", 1)[0].lower()
    return re.sub(r"[^a-z0-9-]", "-", first).strip("-")[:63].strip("-")


def expand_name(template: str, region: str | None, hostname: str) -> str:
    """``template`` with ``{region}`` and ``{hostname}`` (its first label) filled in.

    The result must be a DNS label; ConfigError says what is wrong otherwise.
    """

    def field(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "region":
            if region is None:
                raise ConfigError(
                    f"member_name {template!r} uses {{region}}: set the region too (--region)"
                )
            return region
        if key == "hostname":
            return hostname_label(hostname)
        raise ConfigError(
            f"member_name {template!r}: unknown field {{{key}}}; a template may use "
            "{region} and {hostname}"
        )

    name = _FIELD.sub(field, template)
    if not is_label(name):
        shown = repr(name) if name == template else f"{template!r} (expanded: {name!r})"
        raise ConfigError(
            f"member_name {shown} must be a DNS label: lowercase a-z, 0-9 and inner '-', "
            "at most 63 characters"
        )
    return name


def read_network_key(path: Path) -> bytes:
    """A network key file: exactly 32 raw bytes or 64 hex characters, optionally plus a newline.

    Anything else is a ConfigError saying what the file holds; a file others may read or write
    (mode looser than 0600) is used, with a warning.
    """
    try:
        raw = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(f"cannot read network key file {path}: {exc.strerror}") from exc
    body = raw
    if len(raw) != NETWORK_KEY_LEN:
        body = raw.removesuffix(b"\n").removesuffix(b"\r")
    if len(body) == 2 * NETWORK_KEY_LEN:
        try:
            key = bytes.fromhex(body.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            key = b""
        if len(key) != NETWORK_KEY_LEN:  # fromhex skips whitespace: "aa bb ..." is short
            key = b""
    else:
        key = body if len(body) == NETWORK_KEY_LEN else b""
    if not key:
        raise ConfigError(
            f"network key file {path} holds {len(raw)} bytes; it must hold exactly 32 raw bytes "
            "or 64 hex characters (create one with: head -c 32 /dev/urandom > network.key)"
        )
    if mode & 0o077:
        log.warning(
            "network key file %s has mode %04o: others may read it; run chmod 600 %s",
            path,
            mode,
            path,
        )
    return key


def parse_host_port(text: str, what: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port); ConfigError naming ``what`` otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(
            f"{what}: expected host:port, e.g. 127.0.0.1:8989 or [::1]:8989, got {text!r}"
        )
    return host, int(port)


def parse_peers(values: list[str] | tuple[str, ...]) -> tuple[Endpoint, ...]:
    try:
        return tuple(Endpoint.parse(v) for v in values)
    except EndpointError as exc:
        raise ConfigError(str(exc)) from exc


_PATH_KEYS = {
    "key_file",
    "network_key_file",
    "message_store",
    "api_token_file",
    "forward_dir",
    "admission_file",
    "services_file",
    "ingress_file",
}
_SCALAR_KEYS: dict[str, type] = {
    "tcp_listen_port": int,
    "listen_address": str,
    "api_addr": str,
    "no_tun": bool,
    "no_route_audit": bool,
    "tun_name": str,
    "tun_mtu": int,
    "network_name": str,
    "metrics_api_address": str,
    "max_links": int,
    "max_routes": int,
    "log_level": str,
    "log_format": str,
    "member_name": str,
    "region": str,
    "role": str,
    "listen": bool,
    "member_record_lifetime": int,
    "no_dns": bool,
    "dns_port": int,
    "dns_domain": str,
    "dns_loopback": str,
    "dns_resolved": bool,
}


def _admin_keys(value: object, path: Path) -> tuple[bytes, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"config file {path}: admin_keys must be a list of hex public keys")
    keys = []
    for text in value:
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ConfigError(
                f"config file {path}: admin key {text!r} is not 64 hex characters (32 bytes)"
            )
        keys.append(key)
    return tuple(keys)


def _services(value: object, path: Path) -> tuple[ServiceSpec, ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(
            f"config file {path}: services are [[service]] tables (name, port, proto, check, ...)"
        )
    specs = []
    for n, table in enumerate(value, 1):
        try:
            specs.append(parse_service(table, f"[[service]] #{n}"))
        except SpecError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"config file {path}: a [[service]] name/proto/port is listed twice")
    return tuple(specs)


def _service_owners(value: object, path: Path) -> tuple[tuple[str, bytes], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"config file {path}: [service_owners] must be a table: name = hex key")
    out = []
    for name, text in sorted(value.items()):
        key = b""
        if isinstance(text, str):
            try:
                key = bytes.fromhex(text)
            except ValueError:
                key = b""
        if not is_label(name) or len(key) != 32:
            raise ConfigError(
                f"config file {path}: [service_owners] {name!r}: a service name (DNS label) = "
                "the owner's 64-character hex public key"
            )
        out.append((name, key))
    return tuple(out)


def _listener_tables(key: str, value: object, path: Path) -> tuple[Any, ...]:
    """``[[ingress]]`` / ``[[unwrap]]`` arrays of tables (hyphal.ingress.spec checks each)."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"config file {path}: {key} must be [[{key}]] tables")
    parse = ingress_from_dict if key == "ingress" else unwrap_from_dict
    try:
        specs = tuple(parse(v, f"[[{key}]] #{i + 1}") for i, v in enumerate(value))
    except IngressSpecError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    listens = [s.key for s in specs]
    if len(set(listens)) != len(listens):
        raise ConfigError(f"config file {path}: two [[{key}]] tables listen on one address")
    return specs


def load_config_file(path: Path) -> NodeConfig:
    """Read a TOML config file into a NodeConfig (unknown keys are an error, so typos show)."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    known = {"peers", "names", "admin_keys", "service", "service_owners", "ingress", "unwrap"}
    known |= _PATH_KEYS | set(_SCALAR_KEYS)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown keys {unknown}; known keys: {sorted(known)}"
        )
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "peers":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"config file {path}: peers must be a list of URIs")
            values[key] = parse_peers(value)
        elif key == "names":
            if not isinstance(value, dict):
                raise ConfigError(f"config file {path}: [names] must be a table: label = address")
            try:
                values[key] = parse_names_table(value)
            except InvalidName as exc:
                raise ConfigError(f"config file {path}: {exc}") from None
        elif key == "admin_keys":
            values[key] = _admin_keys(value, path)
        elif key == "service":
            values["services"] = _services(value, path)
        elif key == "service_owners":
            values[key] = _service_owners(value, path)
        elif key in ("ingress", "unwrap"):
            values[key] = _listener_tables(key, value, path)
        elif key in _PATH_KEYS:
            if not isinstance(value, str):
                raise ConfigError(f"config file {path}: {key} must be a path string")
            values[key] = Path(value).expanduser()
        else:
            expected = _SCALAR_KEYS[key]
            if type(value) is not expected:
                raise ConfigError(f"config file {path}: {key} must be a {expected.__name__}")
            values[key] = value
    try:
        return NodeConfig(**values).validate(final=False)
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
