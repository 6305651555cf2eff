"""Independent reference implementations the IPv6 tests check the production code against."""

from __future__ import annotations

import struct


def ref_checksum(src: bytes, dst: bytes, msg: bytes) -> int:
    """Textbook RFC 1071 / RFC 8200 §8.1 ICMPv6 checksum, word by word, for cross-checking."""
    data = src + dst + struct.pack("!I3xB", len(msg), 58) + msg
    if len(data) % 2:
        data += b"\0"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
