"""End-to-end data packet layout (``docs/architecture.md``, "Contract: end-to-end packet").

::

    0       u8    version (1)
    1       u8    hop limit        (the only byte relays change; not authenticated)
    2..17   16 B  destination overlay address
    18..49  32 B  source public key
    50..57  8 B   session id
    58..65  u64   counter (nonce)
    66..    AES-256-GCM ciphertext + 16-byte tag; AAD = bytes 0 and 2..65

The helpers here are what relays need: a cheap look at the header without any crypto, and the
hop-limit decrement. Sealing and opening live in :mod:`hyphal.crypto.e2e`.
"""

from __future__ import annotations

import struct

from hyphal.wire.errors import DecodeError

VERSION = 1

OFF_VERSION = 0
OFF_HOP_LIMIT = 1
OFF_DESTINATION = 2
OFF_SOURCE_KEY = 18
OFF_SESSION = 50
OFF_COUNTER = 58
HEADER_SIZE = 66

ADDRESS_SIZE = 16
PUBLIC_KEY_SIZE = 32
SESSION_ID_SIZE = 8
TAG_SIZE = 16
# Smallest valid packet: header, the kind byte, the tag.
MIN_PACKET_SIZE = HEADER_SIZE + 1 + TAG_SIZE

KIND_IPV6 = 0
KIND_BUS = 1
KIND_ECHO_REQUEST = 2
KIND_ECHO_REPLY = 3
KIND_ICMP_RELAY = 4

DEFAULT_HOP_LIMIT = 64

_COUNTER = struct.Struct(">Q")

Buffer = bytes | bytearray | memoryview


def check_header(buf: Buffer) -> None:
    """Raise DecodeError unless ``buf`` holds at least a header of a version we know."""
    if len(buf) < HEADER_SIZE:
        raise DecodeError(
            f"data packet of {len(buf)} bytes is shorter than its {HEADER_SIZE}-byte header"
        )
    if buf[OFF_VERSION] != VERSION:
        raise DecodeError(f"data packet version {buf[OFF_VERSION]} is not {VERSION}")


def destination(buf: Buffer) -> bytes:
    """The 16-byte destination overlay address (relays route on its first 8 bytes)."""
    check_header(buf)
    return bytes(buf[OFF_DESTINATION : OFF_DESTINATION + ADDRESS_SIZE])


def destination_prefix64(buf: Buffer) -> bytes:
    """The destination's /64 prefix: the routing-table key."""
    check_header(buf)
    return bytes(buf[OFF_DESTINATION : OFF_DESTINATION + 8])


def source_public_key(buf: Buffer) -> bytes:
    check_header(buf)
    return bytes(buf[OFF_SOURCE_KEY : OFF_SOURCE_KEY + PUBLIC_KEY_SIZE])


def session_id(buf: Buffer) -> bytes:
    check_header(buf)
    return bytes(buf[OFF_SESSION : OFF_SESSION + SESSION_ID_SIZE])


def counter(buf: Buffer) -> int:
    check_header(buf)
    return int(_COUNTER.unpack_from(buf, OFF_COUNTER)[0])


def hop_limit(buf: Buffer) -> int:
    check_header(buf)
    return buf[OFF_HOP_LIMIT]


def decrement_hop_limit(buf: bytearray | memoryview) -> int:
    """Decrement the hop limit in place and return the new value.

    A packet whose hop limit is already 0 is left unchanged and 0 is returned; a relay drops (and
    may answer with an ICMP error) when this returns 0.
    """
    check_header(buf)
    value = buf[OFF_HOP_LIMIT]
    if value == 0:
        return 0
    value -= 1
    buf[OFF_HOP_LIMIT] = value
    return value
