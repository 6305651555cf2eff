"""The PROXY codec: round trips in both versions, fed in any split; garbage is a ProxyError
(never another exception); a header is never accepted before its last byte; the bytes after
it come out untouched; the spec's examples decode as the spec says."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.ingress.proxy import (
    MAX_V1_LINE,
    V2_SIGNATURE,
    Address,
    ProxyDecoder,
    ProxyError,
    ProxyHeader,
    encode_local,
    encode_v1,
    encode_v2,
    normalise,
)

ports = st.integers(0, 65535)
v4 = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
v6 = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
addr4 = st.tuples(v4, ports)
addr6 = st.tuples(v6, ports)
any_addr: st.SearchStrategy[Address] = st.one_of(addr4, addr6)
tlvs = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=4).map(tuple)


def split_feed(decoder: ProxyDecoder, data: bytes, cuts: list[int]) -> ProxyHeader | None:
    """Feed ``data`` in pieces cut at ``cuts``; the header must only appear with its last byte."""
    result = None
    prev = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts} | {len(data)}):
        result = decoder.feed(data[prev:cut])
        prev = cut
    return result


@given(
    any_addr,
    any_addr,
    st.sampled_from([1, 2]),
    st.binary(max_size=64),
    st.lists(st.integers(0, 1000), max_size=6),
)
def test_round_trip_any_split(
    src: Address, dst: Address, version: int, payload: bytes, cuts: list[int]
) -> None:
    wire = encode_v1(src, dst) if version == 1 else encode_v2(src, dst)
    decoder = ProxyDecoder()
    header = split_feed(decoder, wire + payload, cuts)
    assert header is not None
    assert header.version == version and not header.local
    assert (header.src, header.dst) == normalise(src, dst)
    assert header.length == len(wire)
    assert decoder.rest == payload


@given(addr6, addr6, tlvs)
def test_v2_tlvs_round_trip(
    src: Address, dst: Address, items: tuple[tuple[int, bytes], ...]
) -> None:
    wire = encode_v2(src, dst, items)
    header = ProxyDecoder().feed(wire)
    assert header is not None and header.tlvs == items


@given(any_addr, any_addr, st.sampled_from([1, 2]))
def test_never_accepts_a_partial_header(src: Address, dst: Address, version: int) -> None:
    wire = encode_v1(src, dst) if version == 1 else encode_v2(src, dst)
    for n in range(len(wire)):
        assert ProxyDecoder().feed(wire[:n]) is None, n
    assert ProxyDecoder().feed(wire) is not None


@given(any_addr, any_addr)
def test_one_family_always(src: Address, dst: Address) -> None:
    (sip, _), (dip, _) = normalise(src, dst)
    assert type(sip) is type(dip)
    for ip in (sip, dip):  # a mapped address only appears beside a real v6 one
        if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
            other = dip if ip is sip else sip
            assert isinstance(other, IPv6Address)


@given(st.binary(max_size=700), st.lists(st.integers(0, 700), max_size=5))
def test_garbage_is_a_clear_error_or_a_valid_header(data: bytes, cuts: list[int]) -> None:
    decoder = ProxyDecoder()
    try:
        header = split_feed(decoder, data, cuts)
    except ProxyError as exc:
        assert str(exc)
        return
    if header is not None:  # whatever it accepted re-encodes to exactly what it consumed
        assert header.length + len(decoder.rest) == len(data)
        assert decoder.rest == data[header.length :]


@given(st.binary(min_size=1, max_size=200))
def test_garbage_after_a_v2_prefix(tail: bytes) -> None:
    decoder = ProxyDecoder()
    try:
        header = decoder.feed(V2_SIGNATURE + tail)
    except ProxyError as exc:
        assert "v2" in str(exc)
        return
    assert header is None or header.length <= 16 + len(tail)


@given(st.binary(max_size=150).filter(lambda b: b"\r\n" not in b))
def test_v1_without_crlf_in_107_bytes_is_refused(tail: bytes) -> None:
    data = b"PROXY " + tail + b"x" * MAX_V1_LINE
    with pytest.raises(ProxyError):
        ProxyDecoder().feed(data)


def test_bounded_v2_length() -> None:
    big = V2_SIGNATURE + bytes((0x21, 0x21)) + (1000).to_bytes(2, "big")
    with pytest.raises(ProxyError, match="longer than this listener accepts"):
        ProxyDecoder(max_header=536).feed(big)


def test_spec_examples() -> None:
    header = ProxyDecoder().feed(b"PROXY TCP4 192.0.2.1 203.0.113.7 56324 443\r\nGET /")
    assert header is not None
    assert header.src == (IPv4Address("192.0.2.1"), 56324)
    assert header.dst == (IPv4Address("203.0.113.7"), 443)
    unknown = ProxyDecoder().feed(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n")
    assert unknown is not None and unknown.local and unknown.src is None
    local = ProxyDecoder().feed(encode_local(2))
    assert local is not None and local.local and local.length == 16
    assert encode_v1((IPv6Address("::ffff:192.0.2.9"), 5), (IPv4Address("203.0.113.1"), 6)) == (
        b"PROXY TCP4 192.0.2.9 203.0.113.1 5 6\r\n"
    )


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 192.0.2.1 203.0.113.7 056324 443\r\n",  # leading zero
        b"PROXY TCP4 192.0.2.1  203.0.113.7 1 443\r\n",  # two spaces
        b"PROXY TCP4 2001:db8::1 203.0.113.7 1 443\r\n",  # family mismatch
        b"PROXY TCP6 192.0.2.1 2001:db8::1 1 443\r\n",
        b"PROXY TCP4 192.0.2.1 203.0.113.7 1 65536\r\n",
        b"PROXY TCP4 192.0.2.01 203.0.113.7 1 2\r\n",
        b"PROXY TCP5 192.0.2.1 203.0.113.7 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 203.0.113.7 1 2\n",  # bare LF
        b"PROXY TCP4 192.0.2.1\r203.0.113.7 1 2\r\n",  # bare CR
        b"proxy TCP4 192.0.2.1 203.0.113.7 1 2\r\n",
    ],
)
def test_v1_strict(line: bytes) -> None:
    with pytest.raises(ProxyError):
        ProxyDecoder().feed(line)


@pytest.mark.parametrize(
    ("ver_cmd", "fam", "length"),
    [(0x11, 0x11, 12), (0x22, 0x11, 12), (0x21, 0x11, 11), (0x21, 0x41, 12), (0x21, 0x12, 12)],
)
def test_v2_strict(ver_cmd: int, fam: int, length: int) -> None:
    data = V2_SIGNATURE + bytes((ver_cmd, fam)) + length.to_bytes(2, "big") + bytes(length)
    with pytest.raises(ProxyError):
        ProxyDecoder().feed(data)


def test_versions_are_the_listeners_choice() -> None:
    with pytest.raises(ProxyError, match="no PROXY header"):
        ProxyDecoder(versions=(2,)).feed(b"PROXY UNKNOWN\r\n")
    with pytest.raises(ProxyError, match="no PROXY header"):
        ProxyDecoder().feed(b"GET / HTTP/1.1\r\n")
