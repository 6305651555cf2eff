"""The stable overlay address of each service, the same on every node of a network.

Every service address lies in one /64 per network, the *service prefix*::

    prefix  = 0x04 | BLAKE2s(network id, person "hyphalsv")[1:8]      (8 bytes, inside 400::/7)
    address = prefix | BLAKE2s(service name, key = network id, person "hyphalsa")[:8]

It sits inside 400::/7 so the TUN's on-link route already carries it to the daemon. A node's /64
is a hash of its public key, so a node would own the service prefix only with a key found by
about 2**56 hash trials; even then the node treats the prefix as the service prefix first
(:func:`is_service_address`), never as that node. Two names share an address only on a 64-bit
hash collision.
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv6Address, IPv6Network

from hyphal.membership.record import network_id


def service_prefix(network: bytes) -> bytes:
    """The 8-byte /64 prefix holding every service address of ``network``."""
    digest = hashlib.blake2s(network_id(network), digest_size=8, person=b"hyphalsv").digest()
    return bytes([0x04]) + digest[1:8]


def service_network(network: bytes) -> IPv6Network:
    return IPv6Network((service_prefix(network) + bytes(8), 64))


def service_address(network: bytes, service: str) -> IPv6Address:
    iid = hashlib.blake2s(
        service.encode(), digest_size=8, key=network_id(network), person=b"hyphalsa"
    ).digest()
    return IPv6Address(service_prefix(network) + iid)


def is_service_address(network: bytes, address: IPv6Address) -> bool:
    return address.packed[:8] == service_prefix(network)
