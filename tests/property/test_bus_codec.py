"""Property tests of the bus packet codec: round trip, and garbage raises only DecodeError."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from hyphal.wire import bus as wire
from hyphal.wire.errors import DecodeError

ids = st.binary(min_size=8, max_size=8)
u32 = st.integers(0, 2**32 - 1)


@st.composite
def acks(draw: st.DrawFn) -> wire.Ack:
    cum = draw(st.integers(0, 2**31))
    points = sorted(draw(st.sets(st.integers(cum + 1, cum + 10_000), max_size=64)))
    pairs = [(points[i], points[i + 1]) for i in range(0, len(points) - 1, 2)]
    # keep a gap between ranges
    ranges = tuple(p for i, p in enumerate(pairs) if i == 0 or p[0] > pairs[i - 1][1])
    return wire.Ack(draw(ids), draw(st.booleans()), cum, draw(u32), ranges[: wire.MAX_SACK_RANGES])


packets = st.one_of(
    st.builds(
        wire.Init,
        ids,
        st.booleans(),
        st.integers(0, 2**64 - 1),
        st.integers(1, 2**32 - 1),
        u32,
        st.binary(min_size=32, max_size=32),
        st.binary(max_size=255),
        st.binary(max_size=300),
    ),
    st.builds(wire.Chunk, ids, st.booleans(), u32, st.binary(min_size=1, max_size=300)),
    acks(),
    st.builds(wire.Received, ids, st.booleans()),
    st.builds(wire.Read, ids, st.booleans()),
    st.builds(wire.ReadAck, ids, st.booleans()),
    st.builds(wire.Abort, ids, st.booleans(), st.sampled_from(wire.AbortReason)),
)


@given(packets)
def test_round_trip(packet: wire.BusPacket) -> None:
    assert wire.decode(wire.encode(packet)) == packet


@given(st.binary(max_size=400))
def test_garbage_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        wire.decode(data)


@given(packets, st.data())
def test_mutations_raise_only_decode_error(packet: wire.BusPacket, data: st.DataObject) -> None:
    raw = bytearray(wire.encode(packet))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
        if op == "flip" and raw:
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= data.draw(st.integers(1, 255))
        elif op == "truncate":
            del raw[data.draw(st.integers(0, len(raw))) :]
        else:
            raw += data.draw(st.binary(min_size=1, max_size=20))
    with contextlib.suppress(DecodeError):
        wire.decode(bytes(raw))
