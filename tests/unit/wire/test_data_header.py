"""Data packet header helpers used by relays."""

from __future__ import annotations

import struct

import pytest

from hyphal.wire import data
from hyphal.wire.errors import DecodeError


def packet(hop: int = 64) -> bytearray:
    header = struct.pack(">BB16s32s8sQ", 1, hop, b"D" * 16, b"S" * 32, b"I" * 8, 77)
    return bytearray(header + b"c" * 20)


def test_offsets_and_accessors() -> None:
    p = packet()
    assert data.HEADER_SIZE == 66
    assert data.destination(p) == b"D" * 16
    assert data.destination_prefix64(p) == b"D" * 8
    assert data.source_public_key(p) == b"S" * 32
    assert data.session_id(p) == b"I" * 8
    assert data.counter(p) == 77
    assert data.hop_limit(p) == 64
    assert (data.KIND_IPV6, data.KIND_BUS, data.KIND_ECHO_REQUEST) == (0, 1, 2)
    assert (data.KIND_ECHO_REPLY, data.KIND_ICMP_RELAY) == (3, 4)


def test_decrement_hop_limit() -> None:
    p = packet(2)
    assert data.decrement_hop_limit(p) == 1
    assert data.decrement_hop_limit(p) == 0
    assert data.decrement_hop_limit(p) == 0
    assert p[1] == 0


def test_short_or_wrong_version() -> None:
    with pytest.raises(DecodeError):
        data.destination(bytes(65))
    p = packet()
    p[0] = 2
    with pytest.raises(DecodeError):
        data.destination(p)
    with pytest.raises(DecodeError):
        data.decrement_hop_limit(p)
