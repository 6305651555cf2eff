"""Property tests: IPv6 accessors and ICMPv6 builders on arbitrary bytes."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.ipv6_reference import ref_checksum
from hyphal.dataplane import ipv6

ADDR = st.binary(min_size=16, max_size=16)
ACCESSORS = (
    ipv6.version,
    ipv6.payload_length,
    ipv6.next_header,
    ipv6.hop_limit,
    ipv6.src,
    ipv6.dst,
    ipv6.dst_prefix64,
)


@st.composite
def ipv6_like(draw: st.DrawFn) -> bytes:
    """Mostly well-formed IPv6 headers with arbitrary next header, addresses and payload."""
    payload = draw(st.binary(max_size=3000))
    nh = draw(st.sampled_from([0, 6, 17, 43, 44, 50, 51, 58, 59, 60]) | st.integers(0, 255))
    src = draw(ADDR | st.just(bytes(16)) | st.just(b"\xff" + bytes(15)))
    dst = draw(ADDR | st.just(b"\xff\x02" + bytes(13) + b"\x01"))
    pkt = struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, 64, src, dst) + payload
    return pkt if draw(st.booleans()) else pkt[: draw(st.integers(0, len(pkt)))]


ANY_BYTES = st.binary(max_size=200) | ipv6_like()


@given(ANY_BYTES)
def test_accessors_raise_only_ipv6error(buf: bytes) -> None:
    for fn in ACCESSORS:
        try:
            fn(buf)
            fn(memoryview(buf))
        except ipv6.IPv6Error:
            assert len(buf) < ipv6.HEADER_LEN
    ipv6.is_valid_ipv6(buf)
    ipv6.is_icmpv6_error(buf)
    ipv6.upper_layer(buf)
    ipv6.icmpv6_checksum_ok(buf)
    ipv6.echo_reply(buf)


@given(ANY_BYTES)
def test_valid_packets_are_consistent(buf: bytes) -> None:
    if ipv6.is_valid_ipv6(buf):
        assert ipv6.version(buf) == 6
        assert ipv6.payload_length(buf) + 40 == len(buf)
        assert len(ipv6.src(buf)) == len(ipv6.dst(buf)) == 16


@settings(max_examples=300)
@given(ANY_BYTES, ADDR, st.integers(0, 255), st.integers(0, 0xFFFFFFFF))
def test_builders_never_crash(original: bytes, src: bytes, code: int, mtu: int) -> None:
    results = [
        ipv6.destination_unreachable(original, src, code),
        ipv6.time_exceeded(original, src, code),
        ipv6.packet_too_big(original, src, mtu),
        ipv6.parameter_problem(original, src, code, mtu),
    ]
    for err in results:
        if err is None:
            continue
        assert ipv6.is_valid_ipv6(err)
        assert len(err) <= ipv6.MIN_MTU
        assert ipv6.src(err) == src and ipv6.dst(err) == original[8:24]
        assert ipv6.icmpv6_checksum_ok(err)
        assert ipv6.is_icmpv6_error(err)
        assert err[48:] == original[: len(err) - 48]
        # RFC 4443 §2.4 (e): never about an error, never to unspecified/multicast sources
        assert not ipv6.is_icmpv6_error(original)
        assert original[8:24] != bytes(16) and original[8] != 0xFF
        # and an error about our error is never generated
        assert ipv6.destination_unreachable(err, src, 0) is None


@given(ADDR, ADDR, st.binary(max_size=2000))
def test_checksum_matches_reference(src: bytes, dst: bytes, msg: bytes) -> None:
    assert ipv6.icmpv6_checksum(src, dst, msg) == ref_checksum(src, dst, msg)


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16), st.binary())
def test_echo_round_trip(a: bytes, b: bytes, data: bytes) -> None:
    req = ipv6.echo_request(a, b, 1, 2, data[:1000])
    assert ipv6.icmpv6_checksum_ok(req)
    rep = ipv6.echo_reply(req)
    if rep is not None:
        assert ipv6.icmpv6_checksum_ok(rep)
        assert ipv6.src(rep) == b and ipv6.dst(rep) == a and rep[48:] == req[48:]
