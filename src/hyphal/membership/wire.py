"""The membership link frame: gossip messages between neighbours (``FRAME_MEMBERS``).

A frame body is a sequence of messages ``type u8 | length u16 | body``:

| type | message | body |
|---|---|---|
| 1 | SUMMARY | item count u32, root hash u64 (XOR of every item's hash) |
| 2 | BUCKETS | 64 x (count u16, XOR hash u64): 640 bytes |
| 3 | HAVE | flags u8 (bit 0 COMPLETE, bit 1 REPLY), bucket mask u64, n x (kind u8, id 8 B, version u64) |
| 4 | WANT | n x (kind u8, id 8 B) |
| 5 | ITEM | kind u8, the item's bytes (a member record, admission or revocation) |

A HAVE without COMPLETE announces new items; with COMPLETE it lists *every* item the sender
holds in the buckets of its mask (anti-entropy); REPLY marks a listing sent in answer to one,
which is not answered again. Unknown message types are skipped, so new ones
can be added; a truncated message, a wrong size or a frame larger than the receiver's limit
raises :class:`~hyphal.wire.errors.DecodeError` (and nothing else).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hyphal.wire.errors import DecodeError

FRAME_MEMBERS = 3
"""The link frame type carrying these messages (1 CONTROL and 2 DATA are the others)."""

MSG_SUMMARY = 1
MSG_BUCKETS = 2
MSG_HAVE = 3
MSG_WANT = 4
MSG_ITEM = 5
HAVE_COMPLETE = 0x01
HAVE_REPLY = 0x02
BUCKET_COUNT = 64
MAX_MESSAGE = 0xFFFF
MSG_HEADER = 3
ENTRY_SIZE = 17
WANT_SIZE = 9

_HDR = struct.Struct(">BH")
_SUMMARY = struct.Struct(">IQ")
_BUCKET = struct.Struct(">HQ")
_HAVE_HEAD = struct.Struct(">BQ")
_ENTRY = struct.Struct(">B8sQ")
_WANT = struct.Struct(">B8s")


@dataclass(frozen=True, slots=True)
class Summary:
    count: int
    root: int


@dataclass(frozen=True, slots=True)
class Buckets:
    buckets: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Have:
    complete: bool
    mask: int
    entries: tuple[tuple[int, bytes, int], ...]
    reply: bool = False


@dataclass(frozen=True, slots=True)
class Want:
    keys: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class ItemMsg:
    kind: int
    raw: bytes


Message = Summary | Buckets | Have | Want | ItemMsg


def _msg(mtype: int, body: bytes) -> bytes:
    if len(body) > MAX_MESSAGE:
        raise ValueError(f"gossip message of {len(body)} bytes exceeds {MAX_MESSAGE}")
    return _HDR.pack(mtype, len(body)) + body


def encode_summary(count: int, root: int) -> bytes:
    return _msg(MSG_SUMMARY, _SUMMARY.pack(min(count, 0xFFFFFFFF), root))


def encode_buckets(buckets: list[tuple[int, int]]) -> bytes:
    if len(buckets) != BUCKET_COUNT:
        raise ValueError("64 buckets")
    return _msg(MSG_BUCKETS, b"".join(_BUCKET.pack(min(c, 0xFFFF), h) for c, h in buckets))


def encode_have(
    complete: bool, mask: int, entries: list[tuple[int, bytes, int]], *, reply: bool = False
) -> bytes:
    flags = (HAVE_COMPLETE if complete else 0) | (HAVE_REPLY if reply else 0)
    head = _HAVE_HEAD.pack(flags, mask)
    return _msg(MSG_HAVE, head + b"".join(_ENTRY.pack(k, i, v) for k, i, v in entries))


def encode_want(keys: list[tuple[int, bytes]]) -> bytes:
    return _msg(MSG_WANT, b"".join(_WANT.pack(k, i) for k, i in keys))


def encode_item(kind: int, raw: bytes) -> bytes:
    return _msg(MSG_ITEM, bytes([kind]) + raw)


HAVE_OVERHEAD = MSG_HEADER + _HAVE_HEAD.size
MAX_HAVE_ENTRIES = (MAX_MESSAGE - _HAVE_HEAD.size) // ENTRY_SIZE
MAX_WANT_KEYS = MAX_MESSAGE // WANT_SIZE


def decode_frame(body: bytes | bytearray | memoryview, limit: int) -> list[Message]:
    """Every known message in a frame body of at most ``limit`` bytes; raises DecodeError."""
    buf = bytes(body)
    if len(buf) > limit:
        raise DecodeError(f"gossip frame of {len(buf)} bytes exceeds {limit}")
    out: list[Message] = []
    pos = 0
    while pos < len(buf):
        if len(buf) - pos < MSG_HEADER:
            raise DecodeError("truncated gossip message header")
        mtype, length = _HDR.unpack_from(buf, pos)
        start = pos + MSG_HEADER
        end = start + length
        if end > len(buf):
            raise DecodeError(f"gossip message type {mtype} claims {length} bytes")
        m = buf[start:end]
        pos = end
        if mtype == MSG_SUMMARY:
            if length != _SUMMARY.size:
                raise DecodeError("SUMMARY is 12 bytes")
            out.append(Summary(*_SUMMARY.unpack(m)))
        elif mtype == MSG_BUCKETS:
            if length != BUCKET_COUNT * _BUCKET.size:
                raise DecodeError("BUCKETS is 640 bytes")
            out.append(Buckets(tuple(_BUCKET.iter_unpack(m))))
        elif mtype == MSG_HAVE:
            if length < _HAVE_HEAD.size or (length - _HAVE_HEAD.size) % ENTRY_SIZE:
                raise DecodeError("HAVE is 9 bytes plus 17 per entry")
            flags, mask = _HAVE_HEAD.unpack_from(m)
            if flags & ~(HAVE_COMPLETE | HAVE_REPLY):
                raise DecodeError(f"HAVE has reserved flag bits: {flags:#x}")
            entries = tuple(_ENTRY.iter_unpack(m[_HAVE_HEAD.size :]))
            out.append(Have(bool(flags & HAVE_COMPLETE), mask, entries, bool(flags & HAVE_REPLY)))
        elif mtype == MSG_WANT:
            if length % WANT_SIZE:
                raise DecodeError("WANT is 9 bytes per key")
            out.append(Want(tuple(_WANT.iter_unpack(m))))
        elif mtype == MSG_ITEM:
            if length < 1:
                raise DecodeError("empty ITEM")
            out.append(ItemMsg(m[0], m[1:]))
    return out
