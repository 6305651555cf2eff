"""Property tests: the data-packet header parser raises only DecodeError."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from hyphal.wire import data
from hyphal.wire.errors import DecodeError


@given(st.binary(max_size=200))
def test_header_parsers_only_decode_error(blob: bytes) -> None:
    for fn in (
        data.destination,
        data.destination_prefix64,
        data.source_public_key,
        data.session_id,
        data.counter,
        data.hop_limit,
    ):
        with contextlib.suppress(DecodeError):
            fn(blob)
    buf = bytearray(blob)
    before = buf[1] if len(buf) > 1 else 0
    try:
        after = data.decrement_hop_limit(buf)
        assert after == max(0, before - 1) and buf[1] == after
        assert buf[2:] == bytearray(blob)[2:]
    except DecodeError:
        assert buf == bytearray(blob)


@given(st.binary(min_size=data.HEADER_SIZE, max_size=120))
def test_header_fields_are_slices(blob: bytes) -> None:
    blob = b"\x01" + blob[1:]
    assert data.destination(blob) == blob[2:18]
    assert data.source_public_key(blob) == blob[18:50]
    assert data.session_id(blob) == blob[50:58]
    assert data.counter(blob) == int.from_bytes(blob[58:66], "big")
