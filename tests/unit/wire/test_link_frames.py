"""Frames inside link records."""

from __future__ import annotations

import pytest

from hyphal.wire.errors import DecodeError
from hyphal.wire.link import (
    FRAME_CONTROL,
    FRAME_DATA,
    MAX_FRAME_BODY,
    encode_frame,
    frame_header,
    iter_frames,
)


def test_round_trip_multiple_frames() -> None:
    blob = (
        encode_frame(FRAME_CONTROL, b"tlvs")
        + encode_frame(FRAME_DATA, b"")
        + encode_frame(FRAME_DATA, b"x" * 70000)
    )
    frames = [(t, bytes(b)) for t, b in iter_frames(blob)]
    assert frames == [(1, b"tlvs"), (2, b""), (2, b"x" * 70000)]
    assert encode_frame(FRAME_CONTROL, b"ab") == b"\x01\x00\x00\x02ab"


def test_unknown_type_is_yielded() -> None:
    assert [(t, bytes(b)) for t, b in iter_frames(encode_frame(200, b"z"))] == [(200, b"z")]


def test_empty_plaintext_has_no_frames() -> None:
    assert list(iter_frames(b"")) == []


@pytest.mark.parametrize("blob", [b"\x01", b"\x01\x00\x00", b"\x01\x00\x00\x05abcd"])
def test_truncation_is_decode_error(blob: bytes) -> None:
    with pytest.raises(DecodeError):
        list(iter_frames(blob))


def test_bodies_are_views() -> None:
    blob = bytearray(encode_frame(FRAME_DATA, b"abc"))
    ((_, body),) = list(iter_frames(blob))
    assert isinstance(body, memoryview)
    assert bytes(body) == b"abc"


def test_encode_limits() -> None:
    with pytest.raises(ValueError):
        frame_header(256, 0)
    with pytest.raises(ValueError):
        frame_header(1, MAX_FRAME_BODY + 1)
