"""IPv6 header access, ICMPv6 error builders and the Internet checksum.

Everything here sits on the packet hot path (every TUN read goes through the accessors), so the
functions work on raw buffers (``bytes``, ``bytearray`` or ``memoryview``) and read only the bytes
they need. Nothing here allocates unless it returns new bytes.

Accessors that need the fixed 40-byte header raise :class:`PacketTooShort` (a ``ValueError``) when
the buffer is shorter than that; they do not check the version nibble. Call :func:`is_valid_ipv6`
once per packet (it never raises) and the plain accessors after that.

ICMPv6 builders follow RFC 4443:

* the error quotes as much of the offending packet as fits without the error exceeding the IPv6
  minimum MTU (1280 bytes);
* no error is generated in response to an ICMPv6 error message or a redirect, to a packet whose
  source is the unspecified address or a multicast address, or to a packet sent to a multicast
  address (except Packet Too Big);
* when a rule forbids an error (or the offending packet is not IPv6 at all), the builder returns
  ``None``; builders never raise on arbitrary ``original`` bytes.

The checksum uses the identity ``sum of 16-bit words == int.from_bytes(data) mod 0xffff`` (since
``2**16 == 1 mod 0xffff``), which lets CPython's C big-int code do the one's-complement sum.
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = [
    "DEFAULT_ERROR_HOP_LIMIT",
    "HEADER_LEN",
    "ICMPV6",
    "ICMPV6_DEST_UNREACHABLE",
    "ICMPV6_ECHO_REPLY",
    "ICMPV6_ECHO_REQUEST",
    "ICMPV6_PACKET_TOO_BIG",
    "ICMPV6_PARAMETER_PROBLEM",
    "ICMPV6_TIME_EXCEEDED",
    "MIN_MTU",
    "TCP",
    "UNREACH_ADDRESS",
    "UNREACH_NO_ROUTE",
    "UNREACH_POLICY",
    "Buffer",
    "IPv6Error",
    "PacketTooShort",
    "checksum",
    "destination_unreachable",
    "dst",
    "dst_prefix64",
    "echo_reply",
    "echo_request",
    "hop_limit",
    "icmpv6_checksum",
    "icmpv6_checksum_ok",
    "in_overlay",
    "is_icmpv6_error",
    "is_multicast",
    "is_unspecified",
    "is_valid_ipv6",
    "next_header",
    "packet_too_big",
    "parameter_problem",
    "payload_length",
    "src",
    "tcp_reset",
    "time_exceeded",
    "upper_layer",
    "version",
]

Buffer = bytes | bytearray | memoryview
"""Any buffer the accessors accept."""

HEADER_LEN: Final = 40
"""Length of the fixed IPv6 header."""
MIN_MTU: Final = 1280
"""IPv6 minimum link MTU; ICMPv6 errors never exceed it (RFC 4443 §2.4 (c))."""
ICMPV6: Final = 58
"""Next-header value of ICMPv6."""

ICMPV6_DEST_UNREACHABLE: Final = 1
ICMPV6_PACKET_TOO_BIG: Final = 2
ICMPV6_TIME_EXCEEDED: Final = 3
ICMPV6_PARAMETER_PROBLEM: Final = 4
ICMPV6_ECHO_REQUEST: Final = 128
ICMPV6_ECHO_REPLY: Final = 129
_ICMPV6_REDIRECT: Final = 137

UNREACH_NO_ROUTE: Final = 0
"""Destination Unreachable code 0: no route to destination."""
UNREACH_ADDRESS: Final = 3
"""Destination Unreachable code 3: address unreachable."""
UNREACH_POLICY: Final = 5
"""Destination Unreachable code 5: source address failed ingress/egress policy."""

DEFAULT_ERROR_HOP_LIMIT: Final = 64

_ICMP_HDR_LEN: Final = 8
_MAX_QUOTE: Final = MIN_MTU - HEADER_LEN - _ICMP_HDR_LEN  # 1232
_UNSPECIFIED: Final = bytes(16)
# Extension headers whose layout is "next header u8 | length u8 (8-octet units, excl. first 8)".
_EXT_GENERIC: Final = frozenset((0, 43, 60, 135, 139, 140))
_EXT_FRAGMENT: Final = 44
_EXT_AH: Final = 51
_MAX_EXT_HEADERS: Final = 16

_HDR = struct.Struct("!IHBB16s16s")  # ver/tc/flow, payload length, next header, hop limit, src, dst
_ICMP_HDR = struct.Struct("!BBHI")  # type, code, checksum, 4 bytes type-specific


class IPv6Error(ValueError):
    """Raised by the accessors on a buffer that cannot be an IPv6 packet."""


class PacketTooShort(IPv6Error):
    """The buffer is shorter than the 40-byte IPv6 header."""


def _need_header(buf: Buffer) -> None:
    if len(buf) < HEADER_LEN:
        raise PacketTooShort(f"{len(buf)} bytes is shorter than an IPv6 header")


# --- accessors ---------------------------------------------------------------------------------


def version(buf: Buffer) -> int:
    """IP version nibble (6 for IPv6). Raises :class:`PacketTooShort` on an empty buffer."""
    if not buf:
        raise PacketTooShort("empty buffer")
    return buf[0] >> 4


def payload_length(buf: Buffer) -> int:
    """Payload length field (bytes after the fixed header)."""
    _need_header(buf)
    return (buf[4] << 8) | buf[5]


def next_header(buf: Buffer) -> int:
    """Next-header field of the fixed header."""
    _need_header(buf)
    return buf[6]


def hop_limit(buf: Buffer) -> int:
    """Hop-limit field."""
    _need_header(buf)
    return buf[7]


def src(buf: Buffer) -> bytes:
    """Source address, 16 bytes."""
    _need_header(buf)
    return bytes(buf[8:24])


def dst(buf: Buffer) -> bytes:
    """Destination address, 16 bytes."""
    _need_header(buf)
    return bytes(buf[24:40])


def dst_prefix64(buf: Buffer) -> bytes:
    """First 8 bytes of the destination: the key of the routing tables."""
    _need_header(buf)
    return bytes(buf[24:32])


def is_valid_ipv6(buf: Buffer) -> bool:
    """True iff ``buf`` is exactly one IPv6 packet: version 6 and 40 + payload length == len.

    Jumbograms (payload length 0 with a hop-by-hop option) are not valid here: a TUN's MTU cannot
    exceed 65535. Never raises.
    """
    n = len(buf)
    return n >= HEADER_LEN and buf[0] >> 4 == 6 and HEADER_LEN + ((buf[4] << 8) | buf[5]) == n


def is_multicast(addr: Buffer) -> bool:
    """True for ff00::/8 (``addr`` is 16 bytes)."""
    return len(addr) > 0 and addr[0] == 0xFF


def is_unspecified(addr: Buffer) -> bool:
    """True for ``::``."""
    return bytes(addr) == _UNSPECIFIED


def in_overlay(addr: Buffer) -> bool:
    """True for addresses in the overlay range 400::/7."""
    return len(addr) == 16 and addr[0] & 0xFE == 0x04


def upper_layer(buf: Buffer) -> tuple[int, int] | None:
    """Walk the extension-header chain: ``(protocol, offset of its header)``.

    The walk stops with protocol 44 at a non-first fragment (the rest of the chain is in the first
    fragment) and with protocol 50 at ESP (encrypted). Returns ``None`` if the chain is truncated
    or longer than 16 headers, or if ``buf`` is not at least 40 bytes with version 6. Never
    raises.
    """
    n = len(buf)
    if n < HEADER_LEN or buf[0] >> 4 != 6:
        return None
    nh = buf[6]
    off = HEADER_LEN
    for _ in range(_MAX_EXT_HEADERS):
        if nh in _EXT_GENERIC:
            if off + 2 > n:
                return None
            nh, off = buf[off], off + 8 + buf[off + 1] * 8
        elif nh == _EXT_FRAGMENT:
            if off + 8 > n:
                return None
            if ((buf[off + 2] << 8) | buf[off + 3]) & 0xFFF8:
                return (_EXT_FRAGMENT, off)  # not the first fragment: upper layer not here
            nh, off = buf[off], off + 8
        elif nh == _EXT_AH:
            if off + 2 > n:
                return None
            nh, off = buf[off], off + (buf[off + 1] + 2) * 4
        else:
            return (nh, off) if off <= n else None
    return None


def is_icmpv6_error(buf: Buffer) -> bool:
    """True if ``buf`` carries an ICMPv6 error message (type < 128). Never raises."""
    if len(buf) > HEADER_LEN and buf[6] == ICMPV6 and buf[0] >> 4 == 6:
        return buf[HEADER_LEN] < 128  # fast path: no extension headers
    ul = upper_layer(buf)
    return ul is not None and ul[0] == ICMPV6 and ul[1] < len(buf) and buf[ul[1]] < 128


# --- checksum ----------------------------------------------------------------------------------


def checksum(data: Buffer, initial: int = 0) -> int:
    """Internet checksum (RFC 1071) of ``data``; ``initial`` is added to the sum first."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    total = int.from_bytes(data, "big") + initial
    s = total % 0xFFFF
    if s == 0 and total:
        s = 0xFFFF  # one's-complement "-0": a non-zero sum never folds to +0
    return 0xFFFF - s


def icmpv6_checksum(source: Buffer, destination: Buffer, message: Buffer) -> int:
    """ICMPv6 checksum of ``message`` (with its checksum field zeroed) for the pseudo-header."""
    pseudo = int.from_bytes(source, "big") + int.from_bytes(destination, "big")
    return checksum(message, pseudo + len(message) + ICMPV6)


def icmpv6_checksum_ok(packet: Buffer) -> bool:
    """True if ``packet`` is IPv6 carrying ICMPv6 directly and its checksum verifies."""
    if not is_valid_ipv6(packet) or packet[6] != ICMPV6 or len(packet) < HEADER_LEN + 4:
        return False
    return icmpv6_checksum(packet[8:24], packet[24:40], packet[HEADER_LEN:]) in (0, 0xFFFF)


# --- builders ----------------------------------------------------------------------------------


def _icmpv6_packet(
    source: bytes, destination: bytes, header: bytes, body: Buffer, hop: int
) -> bytes:
    """IPv6 + ICMPv6 packet; ``header`` is the 8-byte ICMPv6 header with a zero checksum."""
    message = bytearray(header)
    message += body
    csum = icmpv6_checksum(source, destination, message)
    message[2] = csum >> 8
    message[3] = csum & 0xFF
    return _HDR.pack(0x60000000, len(message), ICMPV6, hop, source, destination) + message


def _check_addr(name: str, addr: Buffer) -> bytes:
    b = bytes(addr)
    if len(b) != 16:
        raise ValueError(f"{name} must be 16 bytes, got {len(b)}")
    return b


def _error(
    original: Buffer, source: Buffer, type_: int, code: int, word: int, hop: int
) -> bytes | None:
    """Build an ICMPv6 error about ``original`` or return None where RFC 4443 forbids one."""
    s = _check_addr("src", source)
    if len(original) < HEADER_LEN or original[0] >> 4 != 6:
        return None
    orig_src = bytes(original[8:24])
    if orig_src == _UNSPECIFIED or orig_src[0] == 0xFF:
        return None  # §2.4 (e.6): source does not identify a single node
    if original[24] == 0xFF and not (
        type_ == ICMPV6_PACKET_TOO_BIG or (type_ == ICMPV6_PARAMETER_PROBLEM and code == 2)
    ):
        return None  # §2.4 (e.3): sent to a multicast address
    ul = upper_layer(original)
    if ul is None:
        return None  # malformed chain: stay quiet rather than risk an error storm
    if ul is not None and ul[0] == ICMPV6:
        off = ul[1]
        if off >= len(original):
            return None
        t = original[off]
        if t < 128 or t == _ICMPV6_REDIRECT:
            return None  # §2.4 (e.1), (e.2)
    header = _ICMP_HDR.pack(type_, code, 0, word & 0xFFFFFFFF)
    return _icmpv6_packet(s, orig_src, header, original[:_MAX_QUOTE], hop)


def destination_unreachable(
    original: Buffer, src: Buffer, code: int, hop_limit: int = DEFAULT_ERROR_HOP_LIMIT
) -> bytes | None:
    """ICMPv6 Destination Unreachable from ``src`` back to the sender of ``original``.

    ``code``: :data:`UNREACH_NO_ROUTE` (0), :data:`UNREACH_ADDRESS` (3),
    :data:`UNREACH_POLICY` (5), or another RFC 4443 code (0..255).
    Returns ``None`` where RFC 4443 forbids an error. Raises ``ValueError`` only if ``src`` is not
    16 bytes or ``code`` is not a byte.
    """
    if not 0 <= code <= 255:
        raise ValueError(f"code must be 0..255, got {code}")
    return _error(original, src, ICMPV6_DEST_UNREACHABLE, code, 0, hop_limit)


def time_exceeded(
    original: Buffer, src: Buffer, code: int = 0, hop_limit: int = DEFAULT_ERROR_HOP_LIMIT
) -> bytes | None:
    """ICMPv6 Time Exceeded (code 0: hop limit exceeded in transit); ``None`` where forbidden."""
    if not 0 <= code <= 255:
        raise ValueError(f"code must be 0..255, got {code}")
    return _error(original, src, ICMPV6_TIME_EXCEEDED, code, 0, hop_limit)


def packet_too_big(
    original: Buffer, src: Buffer, mtu: int, hop_limit: int = DEFAULT_ERROR_HOP_LIMIT
) -> bytes | None:
    """ICMPv6 Packet Too Big advertising ``mtu``; ``None`` where forbidden.

    Unlike the other errors it is also sent for packets to a multicast destination (RFC 4443
    §2.4 (e.3)), so multicast path-MTU discovery works.
    """
    if not 0 <= mtu <= 0xFFFFFFFF:
        raise ValueError(f"mtu must fit 32 bits, got {mtu}")
    return _error(original, src, ICMPV6_PACKET_TOO_BIG, 0, mtu, hop_limit)


def parameter_problem(
    original: Buffer,
    src: Buffer,
    code: int,
    pointer: int,
    hop_limit: int = DEFAULT_ERROR_HOP_LIMIT,
) -> bytes | None:
    """ICMPv6 Parameter Problem with ``pointer`` (offset of the error); ``None`` where forbidden."""
    if not 0 <= code <= 255:
        raise ValueError(f"code must be 0..255, got {code}")
    return _error(original, src, ICMPV6_PARAMETER_PROBLEM, code, pointer, hop_limit)


def echo_request(
    src: Buffer, dst: Buffer, ident: int, seq: int, data: Buffer = b"", hop_limit: int = 64
) -> bytes:
    """A complete IPv6 packet carrying an ICMPv6 Echo Request."""
    s, d = _check_addr("src", src), _check_addr("dst", dst)
    header = _ICMP_HDR.pack(ICMPV6_ECHO_REQUEST, 0, 0, ((ident & 0xFFFF) << 16) | (seq & 0xFFFF))
    return _icmpv6_packet(s, d, header, data, hop_limit)


def echo_reply(request: Buffer, hop_limit: int = 64) -> bytes | None:
    """The Echo Reply answering ``request`` (an IPv6 Echo Request without extension headers).

    Source and destination are swapped; identifier, sequence number and data are kept. Returns
    ``None`` if ``request`` is not a valid IPv6 ICMPv6 Echo Request, its source cannot be
    answered (unspecified or multicast) or it was sent to a multicast group (the reply's source
    must then be a unicast address of the responder, which the caller has to choose). Never
    raises.
    """
    if (
        not is_valid_ipv6(request)
        or request[6] != ICMPV6
        or len(request) < HEADER_LEN + _ICMP_HDR_LEN
        or request[HEADER_LEN] != ICMPV6_ECHO_REQUEST
    ):
        return None
    req_src = bytes(request[8:24])
    reply_src = bytes(request[24:40])
    if req_src == _UNSPECIFIED or req_src[0] == 0xFF or reply_src[0] == 0xFF:
        return None
    ident_seq = bytes(request[HEADER_LEN + 4 : HEADER_LEN + 8])
    header = bytes((ICMPV6_ECHO_REPLY, 0, 0, 0)) + ident_seq
    return _icmpv6_packet(reply_src, req_src, header, request[HEADER_LEN + 8 :], hop_limit)


TCP: Final = 6
"""Next-header value of TCP."""
_TCP_HDR = struct.Struct("!HHIIBBHHH")  # ports, seq, ack, data offset, flags, window, csum, urg
_TCP_FIN, _TCP_SYN, _TCP_RST, _TCP_ACK = 0x01, 0x02, 0x04, 0x10


def tcp_reset(segment: Buffer, hop_limit: int = 64) -> bytes | None:
    """The RST a host with no such connection would answer ``segment`` with (RFC 9293 §3.10.7.1).

    ``segment`` is an IPv6 packet carrying TCP directly after the fixed header. The reset comes
    from the segment's destination (address and port) to its source: ``seq = SEG.ACK`` if the
    segment has ACK set, else ``seq = 0`` with ``ACK`` and ``ack = SEG.SEQ + SEG.LEN``. Returns
    ``None`` for a segment that is itself a reset, is not TCP, is truncated, or comes from an
    address a reply cannot go to. Never raises.
    """
    n = len(segment)
    if n < HEADER_LEN + 20 or segment[0] >> 4 != 6 or segment[6] != TCP:
        return None
    src, dst = bytes(segment[8:24]), bytes(segment[24:40])
    if src == _UNSPECIFIED or src[0] == 0xFF or dst[0] == 0xFF:
        return None
    sport, dport, seq, ack, offset_byte, flags, _, _, _ = _TCP_HDR.unpack_from(segment, HEADER_LEN)
    if flags & _TCP_RST:
        return None
    data_offset = (offset_byte >> 4) * 4
    payload_len = min((segment[4] << 8) | segment[5], n - HEADER_LEN) - data_offset
    if data_offset < 20 or payload_len < 0:
        return None
    if flags & _TCP_ACK:
        r_seq, r_ack, r_flags = ack, 0, _TCP_RST
    else:
        seg_len = payload_len + (1 if flags & _TCP_SYN else 0) + (1 if flags & _TCP_FIN else 0)
        r_seq, r_ack, r_flags = 0, (seq + seg_len) & 0xFFFFFFFF, _TCP_RST | _TCP_ACK
    header = bytearray(_TCP_HDR.pack(dport, sport, r_seq, r_ack, 5 << 4, r_flags, 0, 0, 0))
    pseudo = int.from_bytes(dst, "big") + int.from_bytes(src, "big")
    csum = checksum(header, pseudo + len(header) + TCP)
    header[16], header[17] = csum >> 8, csum & 0xFF
    return _HDR.pack(0x60000000, len(header), TCP, hop_limit, dst, src) + header
