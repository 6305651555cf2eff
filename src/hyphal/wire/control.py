"""Routing TLVs: the body of a CONTROL frame, encoded and decoded with strict length checks.

A payload is a sequence of TLVs, each ``type u8 | length u16 | body`` (big-endian). Unknown types
are skipped so newer nodes can add TLVs; a known type with a body of the wrong size, or a TLV that
runs past the end of the payload, raises :class:`DecodeError`. The TLV classes are plain slotted
dataclasses (not frozen: construction is 4x cheaper, and routers decode millions of them in the
simulator); treat them as immutable values.

| type | TLV | body |
|---|---|---|
| 1 | Hello | seqno u16, interval u16 (cs), timestamp u32 (sender clock, µs mod 2^32) |
| 2 | IHU | seqno u16 (echoed), interval u16 (cs), timestamp u32 (echoed) |
| 3 | Update | prefix64 8B, seqno u16, metric u16, interval u16 (cs), flags u8, router id 40B, |
|   |        | issued u32 (origin's Unix time, s) and signature 64B unless metric is 0xFFFF |
|   |        | (a retraction carries neither), then sub-TLVs when flags bit 0x01 is set |
| 4 | SeqnoRequest | prefix64 8B, seqno u16, hop count u8, reserved u8, router id 40B |

Update sub-TLVs are ``type u8 | length u8 | body``; a type with bit 0x80 set is mandatory: a
receiver that does not know it must ignore the whole update. Flags bit 0x01 says at least one
follows the signature; the other flag bits are reserved (sent as 0, ignored on receipt). Type 0x81
(mandatory) is a prefix delegation: owner public key 32B, expiry u32 (Unix s), signature 64B by
the owner over :func:`delegation_message`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from hyphal.wire.errors import DecodeError

TLV_HELLO = 1
TLV_IHU = 2
TLV_UPDATE = 3
TLV_SEQNO_REQUEST = 4

TLV_HEADER_SIZE = 3
PREFIX_SIZE = 8
ROUTER_ID_SIZE = 40
SIGNATURE_SIZE = 64
METRIC_INFINITY = 0xFFFF
MAX_TLV_BODY = 0xFFFF
#: The largest CONTROL payload a node accepts. Senders keep theirs within the router's
#: ``max_payload_size`` (8 KiB); a bigger one is malformed, so that no one frame can cost the
#: receiver more than a few hundred TLVs (and signature checks) at once.
MAX_PAYLOAD_SIZE = 64 * 1024
FLAG_SUB_TLVS = 0x01
SUB_TLV_MANDATORY = 0x80
SUB_TLV_DELEGATION = 0x81

_HEADER = struct.Struct(">BH")
_HELLO = struct.Struct(">HHI")
_UPDATE_FIXED = struct.Struct(">8sHHHB40s")
_SEQNO_REQUEST = struct.Struct(">8sHBB40s")
_ISSUED = struct.Struct(">I")

UPDATE_BODY_SIZE = _UPDATE_FIXED.size + _ISSUED.size + SIGNATURE_SIZE
RETRACTION_BODY_SIZE = _UPDATE_FIXED.size

_ANNOUNCEMENT_DOMAIN = b"hyphal route announcement v2\x00"
_DELEGATION_DOMAIN = b"hyphal prefix delegation v1\x00"
_DELEGATION = struct.Struct(">32sI64s")


@dataclass(slots=True)
class Hello:
    """Liveness probe; the receiver answers at once with an IHU echoing ``timestamp``."""

    seqno: int
    interval: int  # centiseconds until the next Hello
    timestamp: int  # sender's clock in microseconds, modulo 2**32


@dataclass(slots=True)
class IHU:
    """ "I heard you": echoes a Hello's seqno and timestamp so the Hello's sender measures RTT."""

    seqno: int
    interval: int
    timestamp: int


@dataclass(slots=True)
class SubTlv:
    """An Update extension; ``kind`` with bit 0x80 set is mandatory to understand."""

    kind: int
    body: bytes

    @property
    def mandatory(self) -> bool:
        return bool(self.kind & SUB_TLV_MANDATORY)


@dataclass(slots=True)
class Update:
    """A route to ``prefix64`` originated by ``router_id``; metric 0xFFFF means retraction."""

    prefix64: bytes
    seqno: int
    metric: int
    interval: int  # centiseconds until the sender's next periodic update
    flags: int
    router_id: bytes
    signature: bytes  # empty for a retraction
    sub_tlvs: tuple[SubTlv, ...] = ()  # present exactly when flags has FLAG_SUB_TLVS
    issued: int = 0  # origin's Unix time (s) when it signed; signed; 0 in a retraction

    @property
    def is_retraction(self) -> bool:
        return self.metric == METRIC_INFINITY


@dataclass(slots=True)
class SeqnoRequest:
    """Ask the origin of ``prefix64`` (as ``router_id``) for a seqno at least ``seqno``."""

    prefix64: bytes
    seqno: int
    hop_count: int
    router_id: bytes


Tlv = Hello | IHU | Update | SeqnoRequest


@dataclass(frozen=True, slots=True)
class Delegation:
    """The owner of a /64 lets another router's key announce it until ``expiry`` (Unix s)."""

    owner: bytes  # 32-byte X25519 public key whose /64 is delegated
    expiry: int
    signature: bytes  # by ``owner`` over delegation_message(prefix, delegate key, expiry)

    def sub_tlv(self) -> SubTlv:
        return SubTlv(SUB_TLV_DELEGATION, _DELEGATION.pack(self.owner, self.expiry, self.signature))


def decode_delegation(body: bytes) -> Delegation:
    """The body of a delegation sub-TLV; raises DecodeError if it has the wrong size."""
    if len(body) != _DELEGATION.size:
        raise DecodeError(f"delegation has {len(body)} bytes, expected {_DELEGATION.size}")
    owner, expiry, signature = _DELEGATION.unpack(body)
    return Delegation(owner, expiry, signature)


def delegation_message(prefix64: bytes, delegate_key: bytes, expiry: int) -> bytes:
    """The domain-separated bytes a prefix owner signs to delegate ``prefix64`` to a key."""
    return _DELEGATION_DOMAIN + prefix64 + delegate_key + expiry.to_bytes(4, "big")


def announcement_message(prefix64: bytes, seqno: int, router_id: bytes, issued: int) -> bytes:
    """The domain-separated bytes an origin signs for one (prefix, seqno, router id, issued)."""
    return (
        _ANNOUNCEMENT_DOMAIN
        + prefix64
        + seqno.to_bytes(2, "big")
        + router_id
        + issued.to_bytes(4, "big")
    )


def _check_u16(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} {value} does not fit in u16")


def encode_tlv(tlv: Tlv) -> bytes:
    """One TLV with its header. Raises ValueError on out-of-range fields (a caller bug)."""
    if isinstance(tlv, Hello | IHU):
        _check_u16("seqno", tlv.seqno)
        _check_u16("interval", tlv.interval)
        if not 0 <= tlv.timestamp <= 0xFFFFFFFF:
            raise ValueError("timestamp does not fit in u32")
        kind = TLV_HELLO if isinstance(tlv, Hello) else TLV_IHU
        body = _HELLO.pack(tlv.seqno, tlv.interval, tlv.timestamp)
    elif isinstance(tlv, Update):
        if len(tlv.prefix64) != PREFIX_SIZE or len(tlv.router_id) != ROUTER_ID_SIZE:
            raise ValueError("bad prefix or router id size")
        _check_u16("seqno", tlv.seqno)
        _check_u16("metric", tlv.metric)
        _check_u16("interval", tlv.interval)
        if not 0 <= tlv.flags <= 0xFF:
            raise ValueError("flags do not fit in u8")
        expected = 0 if tlv.is_retraction else SIGNATURE_SIZE
        if len(tlv.signature) != expected:
            raise ValueError(f"metric {tlv.metric} needs a {expected}-byte signature")
        if not 0 <= tlv.issued <= 0xFFFFFFFF or (tlv.is_retraction and tlv.issued):
            raise ValueError("issued must fit in u32 and be 0 in a retraction")
        if bool(tlv.flags & FLAG_SUB_TLVS) != bool(tlv.sub_tlvs):
            raise ValueError("flags bit 0x01 must be set exactly when sub-TLVs are present")
        kind = TLV_UPDATE
        body = (
            _UPDATE_FIXED.pack(
                tlv.prefix64, tlv.seqno, tlv.metric, tlv.interval, tlv.flags, tlv.router_id
            )
            + (b"" if tlv.is_retraction else _ISSUED.pack(tlv.issued))
            + tlv.signature
            + b"".join(_encode_sub_tlv(sub) for sub in tlv.sub_tlvs)
        )
    elif isinstance(tlv, SeqnoRequest):
        if len(tlv.prefix64) != PREFIX_SIZE or len(tlv.router_id) != ROUTER_ID_SIZE:
            raise ValueError("bad prefix or router id size")
        _check_u16("seqno", tlv.seqno)
        if not 0 <= tlv.hop_count <= 0xFF:
            raise ValueError("hop count does not fit in u8")
        kind = TLV_SEQNO_REQUEST
        body = _SEQNO_REQUEST.pack(tlv.prefix64, tlv.seqno, tlv.hop_count, 0, tlv.router_id)
    else:  # pragma: no cover - exhaustive over Tlv
        raise TypeError(f"not a TLV: {tlv!r}")
    return _HEADER.pack(kind, len(body)) + body


# The router's hot-path encoders pack a whole update in one call: the TLV header, then the
# fixed update fields (a retraction ends there), then issued.
_RETRACTION = struct.Struct(_HEADER.format + _UPDATE_FIXED.format[1:])
_RELAYED_HEAD = struct.Struct(_RETRACTION.format + _ISSUED.format[1:])


def encode_relayed_update(
    prefix64: bytes,
    seqno: int,
    metric: int,
    interval: int,
    router_id: bytes,
    signature: bytes,
    issued: int,
    delegation: Delegation | None,
) -> bytes:
    """``encode_tlv`` of a signed (non-retraction) update, for the router's hot path: the
    announcement's fields come from a TLV that was decoded and verified, so only the packing
    is left (struct still refuses fields out of range)."""
    if len(signature) != SIGNATURE_SIZE or metric >= METRIC_INFINITY:
        raise ValueError("a relayed update carries a signature and a finite metric")
    subs = b"" if delegation is None else _encode_sub_tlv(delegation.sub_tlv())
    return (
        _RELAYED_HEAD.pack(
            TLV_UPDATE,
            UPDATE_BODY_SIZE + len(subs),
            prefix64,
            seqno,
            metric,
            interval,
            FLAG_SUB_TLVS if subs else 0,
            router_id,
            issued,
        )
        + signature
        + subs
    )


def encode_retraction(prefix64: bytes, seqno: int, interval: int, router_id: bytes) -> bytes:
    """``encode_tlv`` of a retraction (metric infinite, no signature), for the router's hot
    path (struct still refuses fields out of range)."""
    return _RETRACTION.pack(
        TLV_UPDATE, RETRACTION_BODY_SIZE, prefix64, seqno, METRIC_INFINITY, interval, 0, router_id
    )


def _encode_sub_tlv(sub: SubTlv) -> bytes:
    if not 0 <= sub.kind <= 0xFF or len(sub.body) > 0xFF:
        raise ValueError("sub-TLV type or body does not fit in u8")
    return bytes((sub.kind, len(sub.body))) + sub.body


def _decode_sub_tlvs(data: bytes) -> tuple[SubTlv, ...]:
    if not data:
        raise DecodeError("flags announce sub-TLVs but none follow")
    subs: list[SubTlv] = []
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < 2:
            raise DecodeError("truncated sub-TLV header")
        kind, length = data[offset], data[offset + 1]
        offset += 2
        if end - offset < length:
            raise DecodeError(f"sub-TLV {kind} claims {length} bytes, {end - offset} left")
        subs.append(SubTlv(kind, data[offset : offset + length]))
        offset += length
    return tuple(subs)


def encode_payload(tlvs: Iterable[Tlv]) -> bytes:
    """Concatenated TLVs (the caller keeps the total within its size budget)."""
    return b"".join(encode_tlv(tlv) for tlv in tlvs)


def _decode_body(kind: int, body: bytes) -> Tlv | None:
    if kind in (TLV_HELLO, TLV_IHU):
        if len(body) != _HELLO.size:
            raise DecodeError(f"TLV {kind} body has {len(body)} bytes, expected {_HELLO.size}")
        seqno, interval, timestamp = _HELLO.unpack(body)
        if kind == TLV_HELLO:
            return Hello(seqno, interval, timestamp)
        return IHU(seqno, interval, timestamp)
    if kind == TLV_UPDATE:
        if len(body) < RETRACTION_BODY_SIZE:
            raise DecodeError(f"update body has {len(body)} bytes")
        prefix, seqno, metric, interval, flags, router_id = _UPDATE_FIXED.unpack_from(body)
        signed_end = RETRACTION_BODY_SIZE if metric == METRIC_INFINITY else UPDATE_BODY_SIZE
        if flags & FLAG_SUB_TLVS:
            if len(body) < signed_end:
                raise DecodeError(f"update body has {len(body)} bytes")
            subs = _decode_sub_tlvs(body[signed_end:])
        elif len(body) != signed_end:
            raise DecodeError(f"update body has {len(body)} bytes (signed: {signed_end})")
        else:
            subs = ()
        if metric == METRIC_INFINITY:
            return Update(prefix, seqno, metric, interval, flags, router_id, b"", subs)
        (issued,) = _ISSUED.unpack_from(body, RETRACTION_BODY_SIZE)
        signature = body[RETRACTION_BODY_SIZE + _ISSUED.size : signed_end]
        return Update(prefix, seqno, metric, interval, flags, router_id, signature, subs, issued)
    if kind == TLV_SEQNO_REQUEST:
        if len(body) != _SEQNO_REQUEST.size:
            raise DecodeError(f"seqno request body has {len(body)} bytes")
        prefix, seqno, hop_count, _reserved, router_id = _SEQNO_REQUEST.unpack(body)
        return SeqnoRequest(prefix, seqno, hop_count, router_id)
    return None


def decode_payload(payload: bytes) -> list[Tlv]:
    """Every known TLV in ``payload`` in order; unknown types are skipped.

    Raises DecodeError if a TLV header or body is truncated, a known TLV is malformed, or the
    payload is over :data:`MAX_PAYLOAD_SIZE`.
    """
    if len(payload) > MAX_PAYLOAD_SIZE:
        raise DecodeError(f"control payload of {len(payload)} bytes is over {MAX_PAYLOAD_SIZE}")
    tlvs: list[Tlv] = []
    view = bytes(payload)
    offset = 0
    end = len(view)
    while offset < end:
        if end - offset < TLV_HEADER_SIZE:
            raise DecodeError("truncated TLV header")
        kind, length = _HEADER.unpack_from(view, offset)
        offset += TLV_HEADER_SIZE
        if end - offset < length:
            raise DecodeError(f"TLV {kind} claims {length} bytes, {end - offset} left")
        tlv = _decode_body(kind, view[offset : offset + length])
        offset += length
        if tlv is not None:
            tlvs.append(tlv)
    return tlvs
