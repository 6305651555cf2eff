"""Capability payload decoding (the live exchange is in test_manager_loopback)."""

from __future__ import annotations

import pytest

from hyphal.links.capabilities import decode_capabilities, encode_capabilities
from hyphal.wire.errors import DecodeError


def test_decoding_skips_unknown_items_and_reads_old_empty_payloads() -> None:
    assert decode_capabilities(b"") == 0
    assert decode_capabilities(bytes((9, 2, 0xAA, 0xBB)) + encode_capabilities(6)) == 6


def test_malformed_payloads_raise_decode_error() -> None:
    for bad in (b"\x01", b"\x01\x05\x00", bytes((1, 33)) + bytes(33)):
        with pytest.raises(DecodeError):
            decode_capabilities(bad)
