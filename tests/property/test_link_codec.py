"""Property tests: link frames, the record receiver and capabilities raise only DecodeError."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from hyphal.crypto.session import RecordReceiver, RecordSender
from hyphal.links.capabilities import decode_capabilities, encode_capabilities
from hyphal.wire.errors import DecodeError
from hyphal.wire.link import encode_frame, iter_frames

KEY = bytes(range(32))

frames = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=300)), max_size=8)


@given(frames)
def test_frames_round_trip(items: list[tuple[int, bytes]]) -> None:
    blob = b"".join(encode_frame(t, b) for t, b in items)
    assert [(t, bytes(b)) for t, b in iter_frames(blob)] == items


@given(st.binary(max_size=600))
def test_iter_frames_only_decode_error(blob: bytes) -> None:
    try:
        for _t, body in iter_frames(blob):
            assert len(body) <= len(blob)
    except DecodeError:
        pass


@given(st.lists(st.binary(max_size=200), max_size=6))
def test_record_receiver_only_decode_error(chunks: list[bytes]) -> None:
    r = RecordReceiver(KEY)
    for chunk in chunks:
        try:
            r.feed(chunk)
        except DecodeError:
            return


@given(st.lists(st.binary(max_size=3000), max_size=8), st.lists(st.integers(1, 4000), max_size=20))
def test_record_stream_any_split(msgs: list[bytes], cuts: list[int]) -> None:
    s = RecordSender(KEY)
    stream = b"".join(bytes(s.seal(m)) for m in msgs)
    r = RecordReceiver(KEY)
    out: list[bytes] = []
    pos = 0
    for c in cuts:
        out += r.feed(stream[pos : pos + c])
        pos += c
    out += r.feed(stream[pos:])
    assert out == msgs


@given(st.binary(min_size=1, max_size=100), st.integers(0, 10_000), st.integers(0, 7))
def test_record_bit_flip_detected(msg: bytes, where: int, bit: int) -> None:
    rec = bytearray(RecordSender(KEY).seal(msg))
    i = where % len(rec)
    rec[i] ^= 1 << bit
    try:
        out = RecordReceiver(KEY).feed(bytes(rec))
    except DecodeError:
        return
    assert i < 4 and out == []  # a grown length just waits for more bytes


@given(st.integers(0, (1 << 256) - 1))
def test_capabilities_round_trip(features: int) -> None:
    assert decode_capabilities(encode_capabilities(features)) == features


@given(st.binary(max_size=300))
def test_decode_capabilities_only_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        assert decode_capabilities(payload) >= 0
