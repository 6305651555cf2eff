"""Probe bytes: ICMP echo with a Paris-constant checksum, UDP/TCP flow fields, attribution.

Per-flow load balancers hash the fields that name a flow: addresses, protocol and, for UDP and
TCP, the ports; for ICMP echo, the first four bytes of the ICMP header (type, code, checksum).
Paris traceroute keeps those fixed for a whole trace and carries the probe's sequence number
in a field the balancers ignore:

* **ICMP**: the sequence number changes, and two payload bytes compensate so the one's
  complement checksum stays the value chosen by the flow id;
* **UDP**: both ports fixed by the flow id; the sequence number is in the payload;
* **TCP**: both ports fixed by the flow id (the kernel's SYN carries its own sequence number).

Every payload starts with the attribution string (RFC 9511: who probes and where to read about
it), so an operator who captures a probe knows whom to ask. Parsers here only read; every
decoder raises :class:`PacketError` on bytes it cannot account for.
"""

from __future__ import annotations

import struct

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_TIME_EXCEEDED = 11
ICMP6_DEST_UNREACH = 1
ICMP6_TIME_EXCEEDED = 3
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129

UDP_BASE_PORT = 33434  # destination port of UDP probes (classic mode adds the probe index)
SRC_BASE_PORT = 40000  # source port = SRC_BASE_PORT + flow id for UDP and TCP
TCP_DEFAULT_PORT = 80
MAX_FLOW_ID = 4095

DEFAULT_CONTACT = "hyphal-map probe; see https://hyphal.invalid/probing"
MAX_CONTACT = 200
_SEQ = struct.Struct("!H")


class PacketError(ValueError):
    """Bytes that are not the packet they claim to be."""


def checksum(data: bytes) -> int:
    """The Internet (one's complement) checksum of ``data``."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    result: int = ~total & 0xFFFF
    return result


def check_flow_id(flow_id: int) -> int:
    if not 0 <= flow_id <= MAX_FLOW_ID:
        raise ValueError(f"flow id {flow_id} out of range 0..{MAX_FLOW_ID}")
    return flow_id


def contact_bytes(contact: str) -> bytes:
    """The attribution string as sent: printable ASCII, at most MAX_CONTACT bytes."""
    raw = contact.encode("ascii", "replace")[:MAX_CONTACT]
    if any(b < 0x20 or b > 0x7E for b in raw):
        raise ValueError("the contact string must be printable ASCII")
    return raw


def paris_icmp_checksum(flow_id: int) -> int:
    """The constant ICMP checksum that names flow ``flow_id`` (never 0 or 0xFFFF)."""
    return 0x1000 + check_flow_id(flow_id)


def icmp_echo(
    ident: int, seq: int, contact: bytes, flow_id: int | None, *, v6: bool = False
) -> bytes:
    """An echo request: header, two compensation bytes, the sequence number, the contact string.

    With ``flow_id`` (Paris), the compensation bytes make the checksum equal
    :func:`paris_icmp_checksum`; without, they are zero and the checksum varies with ``seq``.
    For ICMPv6 the kernel (or the receiver's pseudo-header) owns the real checksum; the
    compensation still holds the ICMP body's sum constant, which is what flow hashes see.
    """
    kind = ICMP6_ECHO_REQUEST if v6 else ICMP_ECHO_REQUEST
    body = _SEQ.pack(seq & 0xFFFF) + contact
    header = struct.pack("!BBHHH", kind, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    if flow_id is None:
        packet = header + b"\x00\x00" + body
        return packet[:2] + struct.pack("!H", checksum(packet)) + packet[4:]
    target = paris_icmp_checksum(flow_id)
    # checksum(header + comp + body) == target  <=>  one's complement sum == ~target
    partial = (~checksum(header + b"\x00\x00" + body)) & 0xFFFF  # sum without compensation
    want = (~target) & 0xFFFF
    comp = (want - partial) % 0xFFFF
    packet = header + struct.pack("!H", comp) + body
    got = checksum(packet)
    if got != target:  # the 0x0000 / 0xFFFF ambiguity of one's complement
        comp = (comp + 0xFFFF) % 0x10000
        packet = header + struct.pack("!H", comp) + body
        got = checksum(packet)
    return packet[:2] + struct.pack("!H", got) + packet[4:]


def echo_seq(icmp: bytes) -> tuple[int, int, int]:
    """(type, identifier, our sequence number) of an echo request or reply we built."""
    if len(icmp) < 10:
        raise PacketError(f"echo of {len(icmp)} bytes is too short")
    kind, _code, _sum, ident, seq = struct.unpack_from("!BBHHH", icmp)
    return kind, ident, seq


def udp_payload(seq: int, contact: bytes) -> bytes:
    """A UDP probe's payload: the sequence number, then the contact string."""
    return _SEQ.pack(seq & 0xFFFF) + contact


def payload_seq(payload: bytes) -> int:
    if len(payload) < 2:
        raise PacketError("payload too short for a sequence number")
    seq: int = _SEQ.unpack_from(payload)[0]
    return seq


def ports_for(
    proto: str, flow_id: int, probe_index: int, paris: bool, dst_port: int | None
) -> tuple[int, int]:
    """(source port, destination port) of a UDP or TCP probe.

    Paris: both fixed by the flow id for the whole trace. Classic UDP: the destination port
    moves with every probe (traceroute's 33434 + n), which is what spreads a classic trace over
    every branch of an ECMP diamond.
    """
    check_flow_id(flow_id)
    sport = SRC_BASE_PORT + flow_id
    if proto == "udp":
        base = dst_port if dst_port is not None else UDP_BASE_PORT
        return sport, base if paris else (base + probe_index) % 65536 or 1
    if proto == "tcp":
        dport = dst_port if dst_port is not None else TCP_DEFAULT_PORT
        return (sport if paris else SRC_BASE_PORT + (probe_index % (MAX_FLOW_ID + 1))), dport
    raise ValueError(f"ports only exist for udp and tcp, not {proto!r}")


class IcmpError:
    """An ICMP(v6) error or echo reply read off a raw socket, with what it quotes."""

    __slots__ = ("code", "quoted_dst", "quoted_icmp", "quoted_ttl", "reply_ttl", "source", "type")

    def __init__(
        self,
        source: str,
        type_: int,
        code: int,
        reply_ttl: int | None,
        quoted_ttl: int | None,
        quoted_dst: str | None,
        quoted_icmp: bytes,
    ) -> None:
        self.source = source
        self.type = type_
        self.code = code
        self.reply_ttl = reply_ttl
        self.quoted_ttl = quoted_ttl
        self.quoted_dst = quoted_dst
        self.quoted_icmp = quoted_icmp


def parse_icmp4(packet: bytes) -> IcmpError:
    """An IPv4 packet (IP header + ICMP) as a raw IPPROTO_ICMP socket returns it."""
    from ipaddress import IPv4Address

    if len(packet) < 20 + 8:
        raise PacketError("too short for IPv4 + ICMP")
    ihl = (packet[0] & 0x0F) * 4
    if packet[0] >> 4 != 4 or ihl < 20 or len(packet) < ihl + 8:
        raise PacketError("not an IPv4 packet")
    ttl = packet[8]
    source = str(IPv4Address(packet[12:16]))
    icmp = packet[ihl:]
    kind, code = icmp[0], icmp[1]
    if kind in (ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST):
        return IcmpError(source, kind, code, ttl, None, None, icmp)
    inner = icmp[8:]
    if len(inner) < 20 + 8:
        raise PacketError("ICMP error quotes too little")
    iihl = (inner[0] & 0x0F) * 4
    if inner[0] >> 4 != 4 or iihl < 20 or len(inner) < iihl + 8:
        raise PacketError("ICMP error quotes no IPv4 header")
    qttl = inner[8]
    qdst = str(IPv4Address(inner[16:20]))
    return IcmpError(source, kind, code, ttl, qttl, qdst, inner[iihl:])


def parse_icmp6(icmp: bytes, source: str, hop_limit: int | None) -> IcmpError:
    """An ICMPv6 message as a raw IPPROTO_ICMPV6 socket returns it (no IPv6 header)."""
    from ipaddress import IPv6Address

    if len(icmp) < 8:
        raise PacketError("too short for ICMPv6")
    kind, code = icmp[0], icmp[1]
    if kind in (ICMP6_ECHO_REPLY, ICMP6_ECHO_REQUEST):
        return IcmpError(source, kind, code, hop_limit, None, None, icmp)
    inner = icmp[8:]
    if len(inner) < 40 + 8 or inner[0] >> 4 != 6:
        raise PacketError("ICMPv6 error quotes no IPv6 header")
    if inner[6] != 58:  # only echo probes are matched on the raw socket
        raise PacketError("quoted packet is not ICMPv6")
    return IcmpError(
        source, kind, code, hop_limit, inner[7], str(IPv6Address(inner[24:40])), inner[40:]
    )
