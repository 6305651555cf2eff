"""Peer endpoints: parsing and printing `tcp://host:port` URIs (IPv4, [IPv6] and hostnames).

A static peer may be pinned to a public key, as Yggdrasil does: ``tcp://host:9651?key=HEX``
(64 hex characters). The link layer then refuses any other node answering on that endpoint.
The key is not part of an endpoint's identity: ``tcp://h:1?key=..`` and ``tcp://h:1`` are the
same peer (one dial loop, removable by either spelling).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

SUPPORTED_PROTOCOLS = ("tcp",)
KEY_HEX_LEN = 64
MAX_URI_LEN = 1024
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


class EndpointError(ValueError):
    """A peer URI that cannot be parsed; the message says what is wrong."""


@dataclass(frozen=True, order=True)
class Endpoint:
    """Where to reach a peer: protocol, host (IP literal or hostname), port, pinned key."""

    proto: str
    host: str
    port: int
    key: bytes | None = field(default=None, compare=False)  # pinned public key, if any

    @classmethod
    def parse(cls, uri: str) -> Endpoint:
        if len(uri) > MAX_URI_LEN:
            raise EndpointError(f"peer URI of {len(uri)} characters (at most {MAX_URI_LEN})")
        text = uri.strip()
        text, qmark, query = text.partition("?")
        key = _parse_query(uri, query) if qmark else None
        proto, sep, rest = text.partition("://")
        if not sep:
            raise EndpointError(f"{uri!r}: expected a URI like tcp://host:9651 or tcp://[::1]:9651")
        proto = proto.lower()
        if proto not in SUPPORTED_PROTOCOLS:
            raise EndpointError(
                f"{uri!r}: unsupported protocol {proto!r} (supported: {', '.join(SUPPORTED_PROTOCOLS)})"
            )
        rest = rest.rstrip("/")
        if rest.startswith("["):
            host, bracket, port_text = rest[1:].partition("]")
            if not bracket or not port_text.startswith(":"):
                raise EndpointError(
                    f"{uri!r}: an IPv6 endpoint looks like tcp://[2001:db8::1]:9651"
                )
            port_text = port_text[1:]
            try:
                host = str(ipaddress.IPv6Address(host.split("%")[0])) + (
                    "%" + host.split("%", 1)[1] if "%" in host else ""
                )
            except ValueError as exc:
                raise EndpointError(f"{uri!r}: {host!r} is not an IPv6 address") from exc
        else:
            host, colon, port_text = rest.rpartition(":")
            if not colon or not host:
                raise EndpointError(f"{uri!r}: missing port (e.g. {proto}://{rest or 'host'}:9651)")
            if ":" in host:
                raise EndpointError(
                    f"{uri!r}: put IPv6 addresses in brackets: {proto}://[{host}]:port"
                )
            try:
                host = str(ipaddress.IPv4Address(host))
            except ValueError:
                if not _HOSTNAME.match(host):
                    raise EndpointError(
                        f"{uri!r}: {host!r} is neither an IP address nor a hostname"
                    ) from None
                host = host.lower()
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise EndpointError(f"{uri!r}: port must be a number from 1 to 65535")
        return cls(proto=proto, host=host, port=int(port_text), key=key)

    @property
    def socket_addr(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        pin = f"?key={self.key.hex()}" if self.key is not None else ""
        return f"{self.proto}://{self.socket_addr}{pin}"


def _parse_query(uri: str, query: str) -> bytes:
    """The ``key=HEX`` query of a peer URI (the only parameter there is)."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise EndpointError(
            f"{uri!r}: the part after '?' must be key=<64 hex characters>"
        ) from None
    names = [name for name, _ in pairs]
    unknown = sorted(set(names) - {"key"})
    if unknown:
        raise EndpointError(f"{uri!r}: unknown parameter {unknown[0]!r} (known: key)")
    if names.count("key") != 1:
        raise EndpointError(f"{uri!r}: give key= once")
    value = pairs[0][1].strip()
    if len(value) != KEY_HEX_LEN or not all(c in "0123456789abcdefABCDEF" for c in value):
        raise EndpointError(
            f"{uri!r}: key= takes a public key of {KEY_HEX_LEN} hex characters "
            "(hyphal inspect shows it)"
        )
    return bytes.fromhex(value)
