"""Byte layouts of the on-demand routing prototype's messages (see docs/scaling-ondemand.md).

A payload is a sequence of TLVs ``type u8 | length u16 | body`` (big-endian), the same framing
as :mod:`hyphal.wire.control`; unknown types are skipped, a truncated TLV or a known TLV of the
wrong size raises :class:`~hyphal.wire.errors.DecodeError`.

| type | TLV | body | bytes |
|---|---|---|---|
| 1 | Hello | seqno u16, interval u16 (cs), timestamp u32 | 8 |
| 6 | Update | prefix64 8B, seqno u16, metric u16, scope u8, flags u8, query id u32, router id 40B, issued u32, signature 64B | 126 |
| 6 | Update (retraction, metric 0xFFFF) | as above without issued and signature | 58 |
| 7 | Query | query id u32, prefix64 8B, seqno u16, flags u8, ttl u8 | 16 |

Update ``scope`` is how many more hops a neighbourhood announcement may travel (0: hold it, do
not pass it on). Update flags: 0x01 reply (an answer to query ``query id``), 0x02 scoped
(neighbourhood or landmark) announcement, 0x04 the origin is a landmark, 0x08 registration (on
its way to the prefix's rendezvous landmark). Query flags: 0x01 the answer must carry a seqno at
least ``seqno`` (a request to the origin to bump), 0x02 directed (forward along a route only,
never flood), 0x04 lookup (forward towards the prefix's rendezvous landmark).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from hyphal.wire.errors import DecodeError

TLV_HELLO = 1
TLV_UPDATE = 6
TLV_QUERY = 7

METRIC_INFINITY = 0xFFFF
UPDATE_REPLY = 0x01
UPDATE_BALL = 0x02
UPDATE_LANDMARK = 0x04
UPDATE_REGISTER = 0x08
QUERY_SEQNO = 0x01
QUERY_DIRECTED = 0x02
QUERY_LOOKUP = 0x04

_HEADER = struct.Struct(">BH")
_HELLO = struct.Struct(">HHI")
_UPDATE_FIXED = struct.Struct(">8sHHBBI40s")
_TAIL = struct.Struct(">I64s")
_QUERY = struct.Struct(">I8sHBB")

UPDATE_SIZE = _UPDATE_FIXED.size + _TAIL.size
RETRACTION_SIZE = _UPDATE_FIXED.size
QUERY_SIZE = _QUERY.size
MAX_PAYLOAD = 64 * 1024


@dataclass(slots=True)
class Hello:
    seqno: int
    interval_cs: int
    timestamp: int


@dataclass(slots=True)
class Update:
    prefix: bytes
    seqno: int
    metric: int
    scope: int
    flags: int
    query_id: int
    router_id: bytes
    issued: int = 0
    signature: bytes = b""

    @property
    def retraction(self) -> bool:
        return self.metric == METRIC_INFINITY


@dataclass(slots=True)
class Query:
    query_id: int
    prefix: bytes
    seqno: int
    flags: int
    ttl: int


Tlv = Hello | Update | Query


def encode(tlv: Tlv) -> bytes:
    if isinstance(tlv, Hello):
        body = _HELLO.pack(tlv.seqno, tlv.interval_cs, tlv.timestamp)
        kind = TLV_HELLO
    elif isinstance(tlv, Update):
        body = _UPDATE_FIXED.pack(
            tlv.prefix, tlv.seqno, tlv.metric, tlv.scope, tlv.flags, tlv.query_id, tlv.router_id
        )
        if not tlv.retraction:
            body += _TAIL.pack(tlv.issued, tlv.signature)
        kind = TLV_UPDATE
    else:
        body = _QUERY.pack(tlv.query_id, tlv.prefix, tlv.seqno, tlv.flags, tlv.ttl)
        kind = TLV_QUERY
    return _HEADER.pack(kind, len(body)) + body


def encode_all(tlvs: Iterable[Tlv]) -> bytes:
    return b"".join(encode(t) for t in tlvs)


def decode(payload: bytes) -> list[Tlv]:
    """Every known TLV of ``payload``; DecodeError on truncation or a wrong-sized body."""
    if len(payload) > MAX_PAYLOAD:
        raise DecodeError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    out: list[Tlv] = []
    pos, end = 0, len(payload)
    while pos < end:
        if end - pos < _HEADER.size:
            raise DecodeError("truncated TLV header")
        kind, length = _HEADER.unpack_from(payload, pos)
        pos += _HEADER.size
        if pos + length > end:
            raise DecodeError(f"TLV type {kind} runs past the payload")
        body = payload[pos : pos + length]
        pos += length
        if kind == TLV_HELLO:
            if length != _HELLO.size:
                raise DecodeError(f"hello of {length} bytes")
            out.append(Hello(*_HELLO.unpack(body)))
        elif kind == TLV_UPDATE:
            if length not in (RETRACTION_SIZE, UPDATE_SIZE):
                raise DecodeError(f"update of {length} bytes")
            prefix, seqno, metric, scope, flags, qid, rid = _UPDATE_FIXED.unpack_from(body)
            retraction = metric == METRIC_INFINITY
            if retraction != (length == RETRACTION_SIZE):
                raise DecodeError("update size does not match its metric")
            update = Update(prefix, seqno, metric, scope, flags, qid, rid)
            if not retraction:
                update.issued, update.signature = _TAIL.unpack_from(body, _UPDATE_FIXED.size)
            out.append(update)
        elif kind == TLV_QUERY:
            if length != _QUERY.size:
                raise DecodeError(f"query of {length} bytes")
            out.append(Query(*_QUERY.unpack(body)))
    return out
