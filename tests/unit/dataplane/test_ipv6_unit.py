"""Unit tests for hyphal.dataplane.ipv6: accessors, checksum and ICMPv6 builders (RFC 4443)."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

import pytest

from helpers.ipv6_reference import ref_checksum
from hyphal.dataplane import ipv6

A = IPv6Address("400::a").packed  # original sender
B = IPv6Address("4ff:1:2:3::b").packed  # original destination
R = IPv6Address("500:1:2:3::").packed  # node reporting the error
MCAST = IPv6Address("ff02::1").packed


def packet(
    src: bytes = A,
    dst: bytes = B,
    nh: int = 17,
    payload: bytes = b"\x12\x34\x00\x35\x00\x0c\x00\x00data",
    hop: int = 64,
) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60012345, len(payload), nh, hop, src, dst) + payload


def icmp(type_: int, code: int = 0, rest: bytes = b"\0\0\0\0", body: bytes = b"") -> bytes:
    return bytes((type_, code, 0, 0)) + rest + body


def parse_icmp(pkt: bytes) -> tuple[int, int, int, bytes]:
    assert ipv6.is_valid_ipv6(pkt)
    assert ipv6.next_header(pkt) == 58
    t, c, csum, word = struct.unpack_from("!BBHI", pkt, 40)
    msg = bytearray(pkt[40:])
    msg[2:4] = b"\0\0"
    assert csum == ref_checksum(pkt[8:24], pkt[24:40], bytes(msg)), "checksum mismatch"
    assert ipv6.icmpv6_checksum_ok(pkt)
    return t, c, word, pkt[48:]


# --- accessors ---------------------------------------------------------------------------------


def test_accessors() -> None:
    p = packet(hop=7)
    assert ipv6.version(p) == 6
    assert ipv6.payload_length(p) == len(p) - 40
    assert ipv6.next_header(p) == 17
    assert ipv6.hop_limit(p) == 7
    assert ipv6.src(p) == A
    assert ipv6.dst(p) == B
    assert ipv6.dst_prefix64(p) == B[:8]
    for view in (bytearray(p), memoryview(p)):
        assert ipv6.src(view) == A and ipv6.is_valid_ipv6(view)


@pytest.mark.parametrize(
    "fn",
    [
        ipv6.payload_length,
        ipv6.next_header,
        ipv6.hop_limit,
        ipv6.src,
        ipv6.dst,
        ipv6.dst_prefix64,
    ],
)
def test_accessors_reject_short(fn: object) -> None:
    with pytest.raises(ipv6.PacketTooShort):
        fn(b"\x60" * 39)  # type: ignore[operator]
    assert issubclass(ipv6.PacketTooShort, ValueError)


def test_version_empty() -> None:
    with pytest.raises(ipv6.IPv6Error):
        ipv6.version(b"")


def test_is_valid() -> None:
    p = packet()
    assert ipv6.is_valid_ipv6(p)
    assert not ipv6.is_valid_ipv6(p[:-1])  # payload length larger than the buffer
    assert not ipv6.is_valid_ipv6(p + b"\0")  # trailing bytes
    assert not ipv6.is_valid_ipv6(b"\x45" + p[1:])  # IPv4
    assert not ipv6.is_valid_ipv6(b"")
    assert not ipv6.is_valid_ipv6(p[:40])


def test_address_predicates() -> None:
    assert ipv6.in_overlay(A) and ipv6.in_overlay(R) and ipv6.in_overlay(B)
    assert not ipv6.in_overlay(IPv6Address("600::1").packed)
    assert not ipv6.in_overlay(IPv6Address("2001:db8::1").packed)
    assert ipv6.is_multicast(MCAST) and not ipv6.is_multicast(A)
    assert ipv6.is_unspecified(bytes(16)) and not ipv6.is_unspecified(A)


def test_upper_layer_walks_extension_headers() -> None:
    hbh = bytes((60, 0)) + bytes(6)  # hop-by-hop -> destination options
    dopt = bytes((44, 1)) + bytes(14)  # destination options (16 bytes) -> fragment
    frag = bytes((58, 0, 0, 1)) + b"\0\0\0\1"  # first fragment, M flag set -> ICMPv6
    p = packet(nh=0, payload=hbh + dopt + frag + icmp(1))
    assert ipv6.upper_layer(p) == (58, 40 + 8 + 16 + 8)
    assert ipv6.is_icmpv6_error(p)
    later = packet(nh=44, payload=bytes((58, 0, 0x05, 0x00)) + bytes(4) + b"tail")
    assert ipv6.upper_layer(later) == (44, 40)
    assert ipv6.upper_layer(packet(nh=0, payload=b"\x3a")) is None  # truncated
    assert ipv6.upper_layer(b"\x60") is None


# --- checksum ----------------------------------------------------------------------------------


@pytest.mark.parametrize("msg", [b"", b"\0", b"\xff\xff", b"\x01", bytes(range(256)) * 5 + b"x"])
def test_checksum_matches_reference(msg: bytes) -> None:
    assert ipv6.icmpv6_checksum(A, B, msg) == ref_checksum(A, B, msg)


def test_checksum_plain() -> None:
    # RFC 1071 §3 example words 0001 f203 f4f5 f6f7 sum to ddf2 -> checksum 220d
    assert ipv6.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert ipv6.checksum(b"") == 0xFFFF
    assert ipv6.checksum(b"\xff\xff") == 0x0000


# --- builders ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [ipv6.UNREACH_NO_ROUTE, ipv6.UNREACH_ADDRESS, ipv6.UNREACH_POLICY])
def test_destination_unreachable(code: int) -> None:
    orig = packet()
    err = ipv6.destination_unreachable(orig, R, code)
    assert err is not None
    assert ipv6.src(err) == R and ipv6.dst(err) == A and ipv6.hop_limit(err) == 64
    t, c, word, quoted = parse_icmp(err)
    assert (t, c, word) == (1, code, 0)
    assert quoted == orig


def test_time_exceeded_and_packet_too_big() -> None:
    orig = packet()
    te = ipv6.time_exceeded(orig, R)
    assert te is not None and parse_icmp(te)[:3] == (3, 0, 0)
    ptb = ipv6.packet_too_big(orig, R, 1400)
    assert ptb is not None and parse_icmp(ptb)[:3] == (2, 0, 1400)
    pp = ipv6.parameter_problem(orig, R, 0, 6)
    assert pp is not None and parse_icmp(pp)[:3] == (4, 0, 6)


def test_quote_truncated_to_min_mtu() -> None:
    orig = packet(payload=bytes(range(256)) * 200)  # 51 240-byte payload
    err = ipv6.destination_unreachable(orig, R, 0)
    assert err is not None and len(err) == ipv6.MIN_MTU
    _, _, _, quoted = parse_icmp(err)
    assert quoted == orig[: ipv6.MIN_MTU - 48]
    small = packet(payload=b"")
    err2 = ipv6.time_exceeded(small, R)
    assert err2 is not None and len(err2) == 48 + 40


def test_odd_length_quote_checksum() -> None:
    orig = packet(payload=b"abc")
    err = ipv6.destination_unreachable(orig, R, 3)
    assert err is not None
    parse_icmp(err)


@pytest.mark.parametrize("type_", [1, 2, 3, 4, 100, 127, 137])
def test_no_error_about_icmp_error_or_redirect(type_: int) -> None:
    orig = packet(nh=58, payload=icmp(type_, body=b"x" * 20))
    assert ipv6.destination_unreachable(orig, R, 0) is None
    assert ipv6.time_exceeded(orig, R) is None
    assert ipv6.packet_too_big(orig, R, 1280) is None


def test_no_error_about_icmp_error_behind_extension_header() -> None:
    orig = packet(nh=60, payload=bytes((58, 0)) + bytes(6) + icmp(1))
    assert ipv6.destination_unreachable(orig, R, 0) is None


@pytest.mark.parametrize("type_", [128, 129, 135, 200])
def test_error_about_icmp_informational(type_: int) -> None:
    orig = packet(nh=58, payload=icmp(type_, body=b"hello"))
    err = ipv6.destination_unreachable(orig, R, 0)
    assert err is not None and parse_icmp(err)[3] == orig


@pytest.mark.parametrize("bad_src", [bytes(16), MCAST])
def test_no_error_to_unspecified_or_multicast_source(bad_src: bytes) -> None:
    orig = packet(src=bad_src)
    assert ipv6.destination_unreachable(orig, R, 0) is None
    assert ipv6.time_exceeded(orig, R) is None
    assert ipv6.packet_too_big(orig, R, 1280) is None


def test_multicast_destination_only_packet_too_big() -> None:
    orig = packet(dst=MCAST)
    assert ipv6.destination_unreachable(orig, R, 0) is None
    assert ipv6.time_exceeded(orig, R) is None
    assert ipv6.parameter_problem(orig, R, 0, 0) is None
    assert ipv6.parameter_problem(orig, R, 2, 40) is not None  # unrecognised option exception
    assert ipv6.packet_too_big(orig, R, 1280) is not None


def test_non_ipv6_original_gives_none() -> None:
    assert ipv6.destination_unreachable(b"", R, 0) is None
    assert ipv6.destination_unreachable(b"\x45" + bytes(59), R, 0) is None
    assert ipv6.time_exceeded(packet(nh=0, payload=b"\x3a"), R) is None  # truncated chain


def test_builder_argument_errors() -> None:
    with pytest.raises(ValueError):
        ipv6.destination_unreachable(packet(), R[:15], 0)
    with pytest.raises(ValueError):
        ipv6.destination_unreachable(packet(), R, 256)
    with pytest.raises(ValueError):
        ipv6.packet_too_big(packet(), R, -1)


def test_echo_request_reply_round_trip() -> None:
    req = ipv6.echo_request(A, B, ident=0x1234, seq=7, data=b"ping-data")
    t, c, word, data = parse_icmp(req)
    assert (t, c, word, data) == (128, 0, 0x12340007, b"ping-data")
    rep = ipv6.echo_reply(req)
    assert rep is not None
    assert ipv6.src(rep) == B and ipv6.dst(rep) == A
    assert parse_icmp(rep) == (129, 0, 0x12340007, b"ping-data")
    assert ipv6.echo_reply(rep) is None  # not a request
    assert ipv6.echo_reply(packet()) is None
    assert ipv6.echo_reply(ipv6.echo_request(A, MCAST, 1, 1)) is None
    assert ipv6.echo_reply(ipv6.echo_request(bytes(16), B, 1, 1)) is None
