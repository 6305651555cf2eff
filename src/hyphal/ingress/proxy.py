"""The PROXY protocol (HAProxy's v1 text line and v2 binary header) as a sans-IO codec.

Encoding: :func:`encode_v1`, :func:`encode_v2` (a real connection: TCP4 or TCP6; the two
addresses are normalised to one family first) and :func:`encode_local` (v2 LOCAL / v1
UNKNOWN: a connection the proxy opened itself, e.g. a health check).

Decoding: a :class:`ProxyDecoder` is fed bytes as they arrive and answers ``None`` (need more)
or the :class:`ProxyHeader`; the bytes after the header are in :attr:`ProxyDecoder.rest`
untouched. It never accepts a partial header, never looks past the header's end, rejects
anything off-spec with a :class:`ProxyError` saying what, and bounds what it buffers
(:data:`MAX_V1_LINE` for v1, ``max_header`` for v2). Which versions a listener accepts is its
choice (the spec forbids guessing whether a header is present at all: a listener that takes
PROXY requires it).

Why our own and not PyPI's ``proxy-protocol`` (0.11.3): that package checks only 8 of the 12
v2 signature bytes, turns an unknown family or a short address block into a silent "unknown" or
a ``struct.error``, and is built around its own asyncio server; we need a strict, bounded,
incremental core we can property-test (docs/ingress.md).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Literal

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
MAX_V1_LINE = 107
"""The longest v1 line the spec allows, CRLF included."""
V2_FIXED = 16
DEFAULT_MAX_HEADER = 536
"""The largest v2 header (fixed part + addresses + TLVs) we accept by default: the spec's
"fits in 536 bytes" size; TLVs beyond it are refused, not buffered."""

_CMD_LOCAL, _CMD_PROXY = 0x0, 0x1
_TCP4, _TCP6 = 0x11, 0x21
_ADDR_LEN = {0x1: 12, 0x2: 36, 0x3: 216}  # by family nibble: INET, INET6, UNIX
_V4 = struct.Struct("!4s4sHH")
_V6 = struct.Struct("!16s16sHH")

Address = tuple[IPv4Address | IPv6Address, int]
Version = Literal[1, 2]


class ProxyError(ValueError):
    """A PROXY header that is malformed, off-spec or too long; the message says which."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A decoded header. ``src``/``dst`` are None for LOCAL (v2), UNKNOWN (v1) or UNSPEC (v2
    PROXY of an unknown family): the receiver then uses the connection's real endpoints."""

    version: Version
    local: bool
    src: Address | None
    dst: Address | None
    tlvs: tuple[tuple[int, bytes], ...] = ()
    length: int = 0
    """How many bytes the header took on the wire."""


def normalise(src: Address, dst: Address) -> tuple[Address, Address]:
    """``src`` and ``dst`` in one family, as the spec requires.

    IPv4-mapped IPv6 (``::ffff:a.b.c.d``, what a dual-stack socket reports for a v4 client)
    becomes IPv4; if then one side is IPv4 and the other real IPv6, the IPv4 side is mapped
    back (as nginx's v2 writer does), so a header never mixes families."""
    a, b = _unmap(src), _unmap(dst)
    if type(a[0]) is type(b[0]):
        return a, b
    return _map(a), _map(b)


def _unmap(addr: Address) -> Address:
    ip, port = addr
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, port
    return ip, port


def _map(addr: Address) -> Address:
    ip, port = addr
    if isinstance(ip, IPv4Address):
        return IPv6Address(f"::ffff:{ip}"), port
    return ip, port


def _check_port(port: int) -> None:
    if not 0 <= port <= 0xFFFF:
        raise ProxyError(f"port {port} is out of range 0..65535")


def encode_v1(src: Address, dst: Address) -> bytes:
    """``PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\\r\\n`` for one TCP connection."""
    (sip, sport), (dip, dport) = normalise(src, dst)
    _check_port(sport)
    _check_port(dport)
    family = "TCP4" if isinstance(sip, IPv4Address) else "TCP6"
    return f"PROXY {family} {sip} {dip} {sport} {dport}\r\n".encode("ascii")


def encode_v2(src: Address, dst: Address, tlvs: tuple[tuple[int, bytes], ...] = ()) -> bytes:
    """The v2 PROXY header (TCP4 or TCP6) for one TCP connection, with optional TLVs."""
    (sip, sport), (dip, dport) = normalise(src, dst)
    _check_port(sport)
    _check_port(dport)
    if isinstance(sip, IPv4Address):
        fam, body = _TCP4, _V4.pack(sip.packed, dip.packed, sport, dport)
    else:
        fam, body = _TCP6, _V6.pack(sip.packed, dip.packed, sport, dport)
    return _v2(_CMD_PROXY, fam, body + _encode_tlvs(tlvs))


def encode_local(version: Version = 2) -> bytes:
    """A header for a connection the proxy opened itself (health checks): v2 LOCAL/UNSPEC, or
    v1 ``PROXY UNKNOWN`` (the spec advises a real line for v1 checks; use encode_v1 then)."""
    if version == 1:
        return b"PROXY UNKNOWN\r\n"
    return _v2(_CMD_LOCAL, 0x00, b"")


def _v2(command: int, fam: int, body: bytes) -> bytes:
    if len(body) > 0xFFFF:
        raise ProxyError(f"a v2 header body of {len(body)} bytes does not fit its 16-bit length")
    return V2_SIGNATURE + bytes((0x20 | command, fam)) + struct.pack("!H", len(body)) + body


def _encode_tlvs(tlvs: tuple[tuple[int, bytes], ...]) -> bytes:
    out = bytearray()
    for kind, value in tlvs:
        if not 0 <= kind <= 0xFF or len(value) > 0xFFFF:
            raise ProxyError(f"TLV type {kind} / length {len(value)} out of range")
        out += bytes((kind,)) + struct.pack("!H", len(value)) + value
    return bytes(out)


class ProxyDecoder:
    """Incremental, strict decoder for one connection's header.

    ``feed`` returns None until the whole header is in, then the header (again on later calls);
    it raises :class:`ProxyError` as soon as the bytes cannot be a valid header. ``rest`` holds
    the bytes after the header (payload the peer sent with it), never parsed."""

    def __init__(
        self, versions: tuple[Version, ...] = (1, 2), max_header: int = DEFAULT_MAX_HEADER
    ) -> None:
        if not versions or any(v not in (1, 2) for v in versions):
            raise ValueError("versions must be a non-empty subset of (1, 2)")
        if max_header < V2_FIXED + 36:
            raise ValueError(f"max_header must be at least {V2_FIXED + 36}")
        self.versions = versions
        self.max_header = max_header
        self._buf = bytearray()
        self.header: ProxyHeader | None = None
        self.rest = b""

    def feed(self, data: bytes | bytearray | memoryview) -> ProxyHeader | None:
        if self.header is not None:
            self.rest += bytes(data)
            return self.header
        self._buf += data
        header, used = self._try()
        if header is None:
            return None
        self.header = header
        self.rest = bytes(self._buf[used:])
        self._buf.clear()
        return header

    def _try(self) -> tuple[ProxyHeader | None, int]:
        buf = self._buf
        n = len(buf)
        v1_ok = 1 in self.versions and V1_PREFIX[: min(n, 6)] == bytes(buf[:6])
        v2_ok = 2 in self.versions and V2_SIGNATURE[: min(n, 12)] == bytes(buf[:12])
        if not v1_ok and not v2_ok:
            raise ProxyError(
                f"no PROXY header (accepting {' and '.join(f'v{v}' for v in self.versions)}): "
                f"the connection starts with {bytes(buf[:16])!r}"
            )
        if v2_ok:
            return self._try_v2()
        return self._try_v1()

    def _try_v1(self) -> tuple[ProxyHeader | None, int]:
        buf = self._buf
        end = buf.find(b"\r\n", 0, MAX_V1_LINE)
        if end < 0:
            window = buf[:MAX_V1_LINE]
            cr = window.find(b"\r")
            if b"\n" in window or (cr >= 0 and cr != len(buf) - 1):
                raise ProxyError("a v1 PROXY line holds a bare CR or LF")
            if len(buf) >= MAX_V1_LINE:
                raise ProxyError(f"no CRLF within {MAX_V1_LINE} bytes: not a v1 PROXY line")
            return None, 0
        line = bytes(buf[:end])
        if b"\r" in line or b"\n" in line:
            raise ProxyError("a v1 PROXY line holds a bare CR or LF")
        return parse_v1_line(line), end + 2

    def _try_v2(self) -> tuple[ProxyHeader | None, int]:
        buf = self._buf
        if len(buf) < 13:
            return None, 0
        ver_cmd = buf[12]
        if ver_cmd >> 4 != 2:
            raise ProxyError(f"v2 header with version {ver_cmd >> 4} (only 2 exists)")
        command = ver_cmd & 0x0F
        if command not in (_CMD_LOCAL, _CMD_PROXY):
            raise ProxyError(f"v2 header with unknown command {command:#x}")
        if len(buf) < V2_FIXED:
            return None, 0
        fam = buf[13]
        length = int.from_bytes(buf[14:16], "big")
        total = V2_FIXED + length
        if total > self.max_header:
            raise ProxyError(
                f"v2 header of {total} bytes is longer than this listener accepts "
                f"({self.max_header})"
            )
        family, proto = fam >> 4, fam & 0x0F
        if family > 3 or proto > 2:
            raise ProxyError(f"v2 header with unknown address family/protocol {fam:#04x}")
        need = _ADDR_LEN.get(family, 0)
        if length < need:
            raise ProxyError(
                f"v2 header length {length} is shorter than its addresses ({need} bytes)"
            )
        if len(buf) < total:
            return None, 0
        body = bytes(buf[V2_FIXED:total])
        tlvs = _decode_tlvs(body[need:])
        if command == _CMD_LOCAL:
            return ProxyHeader(2, True, None, None, tlvs, total), total
        if fam == _TCP4:
            s, d, sp, dp = _V4.unpack_from(body)
            src: Address = (IPv4Address(s), sp)
            dst: Address = (IPv4Address(d), dp)
        elif fam == _TCP6:
            s, d, sp, dp = _V6.unpack_from(body)
            src, dst = (IPv6Address(s), sp), (IPv6Address(d), dp)
        elif fam == 0x00:
            return ProxyHeader(2, False, None, None, tlvs, total), total
        else:
            raise ProxyError(f"v2 PROXY for {fam:#04x}: this listener carries TCP over IP only")
        return ProxyHeader(2, False, src, dst, tlvs, total), total


def _decode_tlvs(data: bytes) -> tuple[tuple[int, bytes], ...]:
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        if len(data) - i < 3:
            raise ProxyError(f"v2 TLV area ends inside a TLV header ({len(data) - i} bytes)")
        kind = data[i]
        size = int.from_bytes(data[i + 1 : i + 3], "big")
        if i + 3 + size > len(data):
            raise ProxyError(f"v2 TLV {kind:#04x} of {size} bytes runs past the header")
        out.append((kind, data[i + 3 : i + 3 + size]))
        i += 3 + size
    return tuple(out)


def _port(text: str) -> int:
    if not text.isdigit() or not text.isascii() or (len(text) > 1 and text[0] == "0"):
        raise ProxyError(f"v1 port {text!r} is not a decimal number without leading zeros")
    port = int(text)
    if port > 0xFFFF:
        raise ProxyError(f"v1 port {port} is out of range 0..65535")
    return port


def parse_v1_line(line: bytes) -> ProxyHeader:
    """One v1 line without its CRLF."""
    length = len(line) + 2
    if not line.startswith(V1_PREFIX):
        raise ProxyError("not a v1 PROXY line")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyError("a v1 PROXY line holds non-ASCII bytes") from None
    fields = text.split(" ")
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        return ProxyHeader(1, True, None, None, (), length)  # the rest of the line is ignored
    if len(fields) != 6:
        raise ProxyError(
            f"a v1 PROXY line has 6 fields separated by single spaces, got {len(fields)}"
        )
    _, family, s, d, sp, dp = fields
    if family not in ("TCP4", "TCP6"):
        raise ProxyError(f"v1 family {family!r} is not TCP4, TCP6 or UNKNOWN")
    want = IPv4Address if family == "TCP4" else IPv6Address
    addrs = []
    for text_ip in (s, d):
        try:
            ip = ip_address(text_ip)
        except ValueError:
            raise ProxyError(f"v1 address {text_ip!r} is not an IP address") from None
        if type(ip) is not want or "%" in text_ip:
            raise ProxyError(f"v1 address {text_ip!r} is not an {family} address")
        addrs.append(ip)
    return ProxyHeader(1, False, (addrs[0], _port(sp)), (addrs[1], _port(dp)), (), length)
