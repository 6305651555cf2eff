"""Byte layout of message-bus packets (the body of an end-to-end packet of kind 1, KIND_BUS).

Every packet starts with an 11-byte header::

    0      u8    version (1)
    1      u8    type (INIT 1, CHUNK 2, ACK 3, RECEIVED 4, READ 5, READ_ACK 6, ABORT 7)
    2      u8    flags (bit 0: REPLY - the transfer is a reply and reuses the original id;
                 the other bits are reserved and must be zero)
    3..10  8 B   message id

Type-specific bodies (all integers big-endian):

* INIT: ``total u64 | chunk_size u32 | lifetime u32 (s) | BLAKE3-256 (32) | topic_len u8 | topic |
  data`` where data is the first chunk (so a message that fits one chunk needs one round trip).
* CHUNK: ``index u32 | data`` (1 .. chunk_size bytes).
* ACK: ``cumulative u32 | window u32 (chunks) | count u8 | count x (start u32, end u32)``
  selective-ack ranges, each ``start < end`` and strictly above ``cumulative``.
* RECEIVED, READ, READ_ACK: no body.
* ABORT: ``reason u8``.

``decode`` raises :class:`hyphal.wire.errors.DecodeError` and nothing else on malformed input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from hyphal.wire.errors import DecodeError

VERSION = 1
HEADER_SIZE = 11
ID_SIZE = 8
DIGEST_SIZE = 32
MAX_TOPIC = 255
MAX_SACK_RANGES = 32
FLAG_REPLY = 0x01

_HEADER = struct.Struct(">BBB8s")
_INIT = struct.Struct(">QII32sB")
_U32 = struct.Struct(">I")
_ACK = struct.Struct(">IIB")
_RANGE = struct.Struct(">II")


class PacketType(IntEnum):
    INIT = 1
    CHUNK = 2
    ACK = 3
    RECEIVED = 4
    READ = 5
    READ_ACK = 6
    ABORT = 7


class AbortReason(IntEnum):
    """Why a transfer was aborted; sent in ABORT packets by either side."""

    SENDER_GAVE_UP = 1  # deadline passed or cancelled by the sender
    REJECTED_ACL = 2  # topic ACL / default reject
    TOO_LARGE = 3  # announced size above the receiver's limit
    INBOX_FULL = 4  # receiver inbox cannot take it
    BUSY = 5  # too many concurrent transfers (transient: sender retries later)
    UNKNOWN_TRANSFER = 6  # receiver has no state for this transfer (restart / expiry)
    INTEGRITY = 7  # BLAKE3 of the reassembled message did not match
    BAD_REQUEST = 8  # malformed transfer parameters


@dataclass(frozen=True, slots=True)
class Init:
    msg_id: bytes
    reply: bool
    total: int
    chunk_size: int
    lifetime: int
    digest: bytes
    topic: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class Chunk:
    msg_id: bytes
    reply: bool
    index: int
    data: bytes | memoryview  # decode() gives a read-only view into the packet (no copy)


@dataclass(frozen=True, slots=True)
class Ack:
    msg_id: bytes
    reply: bool
    cumulative: int
    window: int
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Received:
    msg_id: bytes
    reply: bool


@dataclass(frozen=True, slots=True)
class Read:
    msg_id: bytes
    reply: bool


@dataclass(frozen=True, slots=True)
class ReadAck:
    msg_id: bytes
    reply: bool


@dataclass(frozen=True, slots=True)
class Abort:
    msg_id: bytes
    reply: bool
    reason: AbortReason


BusPacket = Init | Chunk | Ack | Received | Read | ReadAck | Abort

_U32_MAX = 0xFFFFFFFF
_U64_MAX = 0xFFFFFFFFFFFFFFFF


def _header(ptype: PacketType, msg_id: bytes, reply: bool) -> bytes:
    if len(msg_id) != ID_SIZE:
        raise ValueError("message id must be 8 bytes")
    return _HEADER.pack(VERSION, ptype, FLAG_REPLY if reply else 0, msg_id)


def encode_chunk(msg_id: bytes, reply: bool, index: int, data: bytes | memoryview) -> bytes:
    """CHUNK packet without building an intermediate object (one copy of ``data``)."""
    return b"".join((_header(PacketType.CHUNK, msg_id, reply), _U32.pack(index), data))


def encode(packet: BusPacket) -> bytes:
    """Serialize a packet; raises ValueError for values that do not fit the layout."""
    if isinstance(packet, Init):
        if len(packet.topic) > MAX_TOPIC or len(packet.digest) != DIGEST_SIZE:
            raise ValueError("topic too long or bad digest size")
        if not (0 <= packet.total <= _U64_MAX and 0 < packet.chunk_size <= _U32_MAX):
            raise ValueError("total or chunk size out of range")
        return b"".join(
            (
                _header(PacketType.INIT, packet.msg_id, packet.reply),
                _INIT.pack(
                    packet.total,
                    packet.chunk_size,
                    min(max(packet.lifetime, 0), _U32_MAX),
                    packet.digest,
                    len(packet.topic),
                ),
                packet.topic,
                packet.data,
            )
        )
    if isinstance(packet, Chunk):
        if not 0 <= packet.index <= _U32_MAX:
            raise ValueError("chunk index out of range")
        return encode_chunk(packet.msg_id, packet.reply, packet.index, packet.data)
    if isinstance(packet, Ack):
        if len(packet.ranges) > MAX_SACK_RANGES:
            raise ValueError("too many sack ranges")
        parts = [
            _header(PacketType.ACK, packet.msg_id, packet.reply),
            _ACK.pack(packet.cumulative, packet.window, len(packet.ranges)),
        ]
        parts.extend(_RANGE.pack(start, end) for start, end in packet.ranges)
        return b"".join(parts)
    if isinstance(packet, Received):
        return _header(PacketType.RECEIVED, packet.msg_id, packet.reply)
    if isinstance(packet, Read):
        return _header(PacketType.READ, packet.msg_id, packet.reply)
    if isinstance(packet, ReadAck):
        return _header(PacketType.READ_ACK, packet.msg_id, packet.reply)
    return _header(PacketType.ABORT, packet.msg_id, packet.reply) + bytes([packet.reason])


def decode(data: bytes | bytearray | memoryview) -> BusPacket:
    """Parse one bus packet; raise DecodeError (only) when it is malformed."""
    buf = bytes(data)
    if len(buf) > HEADER_SIZE and buf[1] == PacketType.CHUNK and not buf[2] & ~FLAG_REPLY:
        # Fast path for the bulk of the traffic: the data is a view, not two slice copies.
        if buf[0] != VERSION:
            raise DecodeError(f"unknown bus packet version {buf[0]}")
        if len(buf) <= HEADER_SIZE + _U32.size:
            raise DecodeError("CHUNK without data")
        (index,) = _U32.unpack_from(buf, HEADER_SIZE)
        return Chunk(
            buf[3:HEADER_SIZE],
            bool(buf[2] & FLAG_REPLY),
            index,
            memoryview(buf)[HEADER_SIZE + _U32.size :],
        )
    if len(buf) < HEADER_SIZE:
        raise DecodeError(f"bus packet of {len(buf)} bytes is shorter than the header")
    version, ptype, flags, msg_id = _HEADER.unpack_from(buf, 0)
    if version != VERSION:
        raise DecodeError(f"unknown bus packet version {version}")
    if flags & ~FLAG_REPLY:
        raise DecodeError(f"reserved bus flags set: {flags:#x}")
    reply = bool(flags & FLAG_REPLY)
    body = buf[HEADER_SIZE:]
    if ptype == PacketType.INIT:
        if len(body) < _INIT.size:
            raise DecodeError("truncated INIT")
        total, chunk_size, lifetime, digest, topic_len = _INIT.unpack_from(body, 0)
        end = _INIT.size + topic_len
        if len(body) < end:
            raise DecodeError("INIT topic runs past the packet")
        if chunk_size == 0:
            raise DecodeError("INIT chunk size is zero")
        return Init(
            msg_id, reply, total, chunk_size, lifetime, digest, body[_INIT.size : end], body[end:]
        )
    if ptype == PacketType.CHUNK:
        if len(body) <= _U32.size:
            raise DecodeError("CHUNK without data")
        (index,) = _U32.unpack_from(body, 0)
        return Chunk(msg_id, reply, index, body[_U32.size :])
    if ptype == PacketType.ACK:
        if len(body) < _ACK.size:
            raise DecodeError("truncated ACK")
        cumulative, window, count = _ACK.unpack_from(body, 0)
        if count > MAX_SACK_RANGES:
            raise DecodeError(f"ACK with {count} ranges (max {MAX_SACK_RANGES})")
        if len(body) != _ACK.size + count * _RANGE.size:
            raise DecodeError("ACK length does not match its range count")
        ranges = []
        floor = cumulative
        for i in range(count):
            start, end = _RANGE.unpack_from(body, _ACK.size + i * _RANGE.size)
            if not floor < start < end:
                raise DecodeError("ACK ranges must be ascending, disjoint and above cumulative")
            ranges.append((start, end))
            floor = end
        return Ack(msg_id, reply, cumulative, window, tuple(ranges))
    if ptype in (PacketType.RECEIVED, PacketType.READ, PacketType.READ_ACK):
        if body:
            raise DecodeError(f"{PacketType(ptype).name} has trailing bytes")
        if ptype == PacketType.RECEIVED:
            return Received(msg_id, reply)
        if ptype == PacketType.READ:
            return Read(msg_id, reply)
        return ReadAck(msg_id, reply)
    if ptype == PacketType.ABORT:
        if len(body) != 1:
            raise DecodeError("ABORT body must be one byte")
        try:
            reason = AbortReason(body[0])
        except ValueError:
            raise DecodeError(f"unknown abort reason {body[0]}") from None
        return Abort(msg_id, reply, reason)
    raise DecodeError(f"unknown bus packet type {ptype}")
