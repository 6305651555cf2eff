"""The worker's own last check before a target reaches the wire.

The feeder filters bogons and opt-outs before it queues a target; the worker checks again, so
a wrong feeder, a typo on the command line or a hostile store cannot make it probe private,
reserved or documentation space. A target passes only if it is a global unicast address (stdlib
``ipaddress.is_global``, which follows the IANA special-purpose registries) and not multicast,
or if it falls in an exception the operator passed explicitly (a lab's 198.18.0.0/15). The
operator's opt-out prefixes always win, exceptions included.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

Network = IPv4Network | IPv6Network


class TargetRefused(ValueError):
    """A target the worker will not probe; the message says why."""


def parse_networks(items: Iterable[str]) -> list[Network]:
    nets: list[Network] = []
    for item in items:
        text = item.split("#", 1)[0].strip()
        if text:
            nets.append(ip_network(text, strict=False))
    return nets


class TargetGuard:
    def __init__(self, exceptions: Iterable[Network] = (), opt_out: Iterable[Network] = ()) -> None:
        self.exceptions = list(exceptions)
        self.opt_out = sorted(opt_out, key=lambda n: n.prefixlen, reverse=True)
        self.refused = 0

    def check(self, target: str) -> str:
        """The canonical IP literal of an allowed target; raises TargetRefused otherwise."""
        try:
            address = ip_address(target.strip())
        except ValueError:
            self.refused += 1
            raise TargetRefused(f"{target[:60]!r} is not an IP address") from None
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for net in self.opt_out:
            if address.version == net.version and address in net:
                self.refused += 1
                raise TargetRefused(f"{address} is in the opt-out list ({net})")
        if any(address.version == n.version and address in n for n in self.exceptions):
            return str(address)
        if address.is_multicast or not address.is_global or _extra_bogon(address):
            self.refused += 1
            raise TargetRefused(
                f"{address} is private, reserved or bogon space (pass --allow {address} to a lab)"
            )
        return str(address)


_EXTRA_V4 = [ip_network(n) for n in ("0.0.0.0/8", "100.64.0.0/10", "192.88.99.0/24", "240.0.0.0/4")]
_EXTRA_V6 = [ip_network(n) for n in ("2002::/16", "64:ff9b:1::/48", "3fff::/20", "5f00::/16")]


def _extra_bogon(address: IPv4Address | IPv6Address) -> bool:
    nets = _EXTRA_V4 if isinstance(address, IPv4Address) else _EXTRA_V6
    return any(address in n for n in nets)
