"""Peer endpoints: parsing and printing `tcp://host:port` URIs (IPv4, [IPv6] and hostnames)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

SUPPORTED_PROTOCOLS = ("tcp",)
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


class EndpointError(ValueError):
    """A peer URI that cannot be parsed; the message says what is wrong."""


@dataclass(frozen=True, order=True)
class Endpoint:
    """Where to reach a peer: protocol, host (IP literal or hostname) and port."""

    proto: str
    host: str
    port: int

    @classmethod
    def parse(cls, uri: str) -> Endpoint:
        text = uri.strip()
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
        return cls(proto=proto, host=host, port=int(port_text))

    @property
    def socket_addr(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.proto}://{self.socket_addr}"
