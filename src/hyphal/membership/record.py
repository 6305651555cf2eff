"""The member record: what one node says about itself, signed with its own key.

Wire format (big-endian; ``str8`` = u8 length + UTF-8 bytes)::

    u8   format (1)
    u8   flags: bit 0 LEFT (a tombstone: the node left on purpose); other bits are 0
    32 B origin public key (X25519; the signer)
    u64  version (hybrid logical clock, :mod:`hyphal.membership.hlc`)
    u32  expires (Unix seconds; after it every node drops the record)
    -- only when LEFT is clear:
    u64  name_since (the version at which the origin first claimed ``name``)
    str8 name, str8 region
    u8   n, n x str8 roles           (sorted, unique)
    u8   n, n x (str8 key, str8 value) tags (sorted by key, keys unique)
    u8   n, n x str8 endpoints       (the origin's order of preference, unique)
    str8 software version
    u16  n, n bytes extension        (opaque: services and mapping fill it)
    64 B XEdDSA signature over CONTEXT | network id (16 B) | every byte above

The whole record is at most :data:`MAX_RECORD_SIZE` bytes. :func:`build` refuses a larger one
with a :class:`RecordTooLarge` that says by how much; :func:`decode` is total: it returns a
record or raises :class:`~hyphal.wire.errors.DecodeError`, and only accepts the canonical form, so
``encode(decode(b)) == b`` for every ``b`` it accepts.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import struct
from dataclasses import dataclass

from hyphal.crypto.signing import SIGNATURE_SIZE, Signer, Verifier
from hyphal.identity import prefix64_for_public_key
from hyphal.wire.errors import DecodeError

FORMAT = 1
FLAG_LEFT = 0x01
MAX_RECORD_SIZE = 1024
MAX_EXTENSION = 512
MAX_ROLES = 8
MAX_TAGS = 16
MAX_ENDPOINTS = 8
MAX_ENDPOINT_LEN = 128
MAX_TAG_VALUE = 64
MAX_SOFTWARE = 32
CONTEXT = b"hyphal member record v1\0"

_HEAD = struct.Struct(">BB32sQI")
_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")
HEAD_SIZE = _HEAD.size
EXPIRES_OFFSET = 42

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_TAG_KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}\Z")


class RecordError(ValueError):
    """A record we were asked to build is not valid; the message says which field and why."""


class RecordTooLarge(RecordError):
    """The encoded record would exceed :data:`MAX_RECORD_SIZE`."""


def network_id(network: bytes) -> bytes:
    """The 16-byte network id bound into every signature (so a record cannot cross networks)."""
    return hashlib.blake2s(network, digest_size=16, person=b"hyphalnw").digest()


def is_label(text: str) -> bool:
    """A DNS label as names and regions use it: lowercase a-z, 0-9 and inner hyphens, 1-63."""
    return bool(_LABEL.match(text))


def _printable(text: str) -> bool:
    return text.isprintable()


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A decoded, canonical member record (signature included, not yet checked against a key)."""

    origin: bytes
    version: int
    expires: int
    left: bool = False
    name_since: int = 0
    name: str = ""
    region: str = ""
    roles: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    endpoints: tuple[str, ...] = ()
    software: str = ""
    extension: bytes = b""
    signature: bytes = bytes(SIGNATURE_SIZE)

    @property
    def prefix(self) -> bytes:
        """The origin's /64 prefix: the key of the store, of digests and of routing."""
        return prefix64_for_public_key(self.origin)

    def body(self) -> bytes:
        """Every encoded byte but the signature (what the signature covers, after the context)."""
        return _encode_body(self)

    def encode(self) -> bytes:
        return _encode_body(self) + self.signature

    def signed_message(self, network: bytes) -> bytes:
        return CONTEXT + network_id(network) + self.body()

    def verify(self, verifier: Verifier, network: bytes) -> bool:
        return verifier.verify(self.origin, self.signed_message(network), self.signature)


def _str8(text: str, what: str) -> bytes:
    raw = text.encode()
    if len(raw) > 255:
        raise RecordError(f"{what} is {len(raw)} bytes; at most 255")
    return bytes([len(raw)]) + raw


def _encode_body(r: MemberRecord) -> bytes:
    flags = FLAG_LEFT if r.left else 0
    parts = [_HEAD.pack(FORMAT, flags, r.origin, r.version, r.expires)]
    if not r.left:
        parts.append(_U64.pack(r.name_since))
        parts.append(_str8(r.name, "name"))
        parts.append(_str8(r.region, "region"))
        parts.append(bytes([len(r.roles)]))
        parts.extend(_str8(role, "role") for role in r.roles)
        parts.append(bytes([len(r.tags)]))
        for key, value in r.tags:
            parts.append(_str8(key, "tag key"))
            parts.append(_str8(value, "tag value"))
        parts.append(bytes([len(r.endpoints)]))
        parts.extend(_str8(e, "endpoint") for e in r.endpoints)
        parts.append(_str8(r.software, "software version"))
        parts.append(_U16.pack(len(r.extension)))
        parts.append(r.extension)
    return b"".join(parts)


def validate(r: MemberRecord) -> None:
    """Raise :class:`RecordError` unless ``r`` is canonical and within every bound."""
    if len(r.origin) != 32:
        raise RecordError("origin must be a 32-byte public key")
    if not (0 <= r.version < 1 << 64 and 0 <= r.expires < 1 << 32):
        raise RecordError("version or expiry out of range")
    if len(r.signature) != SIGNATURE_SIZE:
        raise RecordError("signature must be 64 bytes")
    if r.left:
        if (
            r.name_since
            or r.name
            or r.region
            or r.roles
            or r.tags
            or r.endpoints
            or r.software
            or r.extension
        ):
            raise RecordError("a tombstone (left) carries no fields")
        return
    if not 0 <= r.name_since < 1 << 64:
        raise RecordError("name_since out of range")
    if r.name and not is_label(r.name):
        raise RecordError(
            f"name {r.name!r} is not a DNS label (a-z, 0-9, inner '-', at most 63 characters)"
        )
    if r.region and not is_label(r.region):
        raise RecordError(f"region {r.region!r} is not a DNS label (a-z, 0-9, inner '-')")
    if len(r.roles) > MAX_ROLES:
        raise RecordError(f"{len(r.roles)} roles; at most {MAX_ROLES}")
    if any(not is_label(role) for role in r.roles):
        raise RecordError("each role is a DNS label (a-z, 0-9, inner '-')")
    if list(r.roles) != sorted(set(r.roles)):
        raise RecordError("roles must be sorted and unique")
    if len(r.tags) > MAX_TAGS:
        raise RecordError(f"{len(r.tags)} tags; at most {MAX_TAGS}")
    keys = [k for k, _ in r.tags]
    if keys != sorted(set(keys)):
        raise RecordError("tag keys must be sorted and unique")
    for key, value in r.tags:
        if not _TAG_KEY.match(key):
            raise RecordError(f"tag key {key!r}: a-z, 0-9, '_', '.', '-', at most 32 characters")
        if len(value.encode()) > MAX_TAG_VALUE or not _printable(value):
            raise RecordError(f"tag {key}: value must be printable, at most {MAX_TAG_VALUE} bytes")
    if len(r.endpoints) > MAX_ENDPOINTS:
        raise RecordError(f"{len(r.endpoints)} endpoints; at most {MAX_ENDPOINTS}")
    if len(set(r.endpoints)) != len(r.endpoints):
        raise RecordError("endpoints must be unique")
    for e in r.endpoints:
        if not e or len(e) > MAX_ENDPOINT_LEN or not e.isascii() or not e.isprintable() or " " in e:
            raise RecordError(f"endpoint {e!r}: printable ASCII without spaces, 1-128 characters")
    if len(r.software.encode()) > MAX_SOFTWARE or not _printable(r.software):
        raise RecordError(f"software version: printable, at most {MAX_SOFTWARE} bytes")
    if len(r.extension) > MAX_EXTENSION:
        raise RecordError(f"extension is {len(r.extension)} bytes; at most {MAX_EXTENSION}")


def build(
    signer: Signer,
    network: bytes,
    *,
    origin: bytes,
    version: int,
    expires: int,
    left: bool = False,
    name_since: int = 0,
    name: str = "",
    region: str = "",
    roles: tuple[str, ...] | list[str] = (),
    tags: dict[str, str] | tuple[tuple[str, str], ...] = (),
    endpoints: tuple[str, ...] | list[str] = (),
    software: str = "",
    extension: bytes = b"",
) -> MemberRecord:
    """A signed, canonical record; raises :class:`RecordError` (or :class:`RecordTooLarge`)."""
    tag_items = tuple(sorted(tags.items() if isinstance(tags, dict) else tags))
    unsigned = MemberRecord(
        origin=origin,
        version=version,
        expires=expires,
        left=left,
        name_since=name_since,
        name=name,
        region=region,
        roles=tuple(sorted(set(roles))),
        tags=tag_items,
        endpoints=tuple(dict.fromkeys(endpoints)),
        software=software,
        extension=extension,
    )
    validate(unsigned)
    size = len(unsigned.body()) + SIGNATURE_SIZE
    if size > MAX_RECORD_SIZE:
        raise RecordTooLarge(
            f"member record would be {size} bytes, {size - MAX_RECORD_SIZE} over the "
            f"{MAX_RECORD_SIZE}-byte limit: shorten tags, endpoints or the extension"
        )
    signature = signer.sign(unsigned.signed_message(network))
    return dataclasses.replace(unsigned, signature=signature)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise DecodeError(f"member record truncated in {what}")
        out = self.buf[self.pos : end]
        self.pos = end
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def str8(self, what: str) -> str:
        raw = self.take(self.u8(what), what)
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise DecodeError(f"member record: {what} is not UTF-8") from exc


@functools.lru_cache(maxsize=2048)
def decode_cached(data: bytes) -> MemberRecord:
    """:func:`decode` with a small process-wide cache (stores keep records as bytes)."""
    return decode(data)


def decode(data: bytes | bytearray | memoryview) -> MemberRecord:
    """The record in ``data`` (exactly one, nothing after it); raises DecodeError."""
    buf = bytes(data)
    if len(buf) > MAX_RECORD_SIZE:
        raise DecodeError(f"member record of {len(buf)} bytes exceeds {MAX_RECORD_SIZE}")
    if len(buf) < HEAD_SIZE + SIGNATURE_SIZE:
        raise DecodeError(f"member record of {len(buf)} bytes is too short")
    fmt, flags, origin, version, expires = _HEAD.unpack_from(buf)
    if fmt != FORMAT:
        raise DecodeError(f"member record format {fmt} is not {FORMAT}")
    if flags & ~FLAG_LEFT:
        raise DecodeError(f"member record has reserved flag bits set: {flags:#x}")
    body = _Reader(buf[: len(buf) - SIGNATURE_SIZE])
    body.pos = HEAD_SIZE
    signature = buf[len(buf) - SIGNATURE_SIZE :]
    if flags & FLAG_LEFT:
        record = MemberRecord(origin, version, expires, left=True, signature=signature)
    else:
        (name_since,) = _U64.unpack(body.take(8, "name_since"))
        name = body.str8("name")
        region = body.str8("region")
        roles = tuple(body.str8("role") for _ in range(body.u8("roles")))
        tags = tuple((body.str8("tag key"), body.str8("tag value")) for _ in range(body.u8("tags")))
        endpoints = tuple(body.str8("endpoint") for _ in range(body.u8("endpoints")))
        software = body.str8("software")
        (ext_len,) = _U16.unpack(body.take(2, "extension length"))
        extension = body.take(ext_len, "extension")
        record = MemberRecord(
            origin,
            version,
            expires,
            False,
            name_since,
            name,
            region,
            roles,
            tags,
            endpoints,
            software,
            extension,
            signature,
        )
    if body.pos != len(body.buf):
        raise DecodeError(f"member record has {len(body.buf) - body.pos} trailing bytes")
    try:
        validate(record)
    except RecordError as exc:
        raise DecodeError(f"member record: {exc}") from exc
    return record
