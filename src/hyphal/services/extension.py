"""The services section of a member record's ``extension`` bytes: a strict, canonical codec.

The extension (at most 512 bytes, :mod:`hyphal.membership.record`) is a list of sections so that
several features can share it::

    repeated: u8 type | u16 length | length bytes      (types strictly ascending, unique)

Type 1 is ours (other types are kept as they are and skipped). Its value::

    u8   n services (1..16), sorted by name, names unique
    per service:
      str8 name (a DNS label)
      u8   flags: bit 0 = a grant proof follows; other bits 0
      [104 B proof: owner key 32 | since u32 | expires u32 | signature 64]  (hyphal.services.grant)
      u8   n endpoints (1..8), sorted by (proto, port), unique
      per endpoint: u16 port (1..65535) | u8 flags | u8 weight (1..255)
        flags: bit 0 udp (else tcp), bit 1 healthy, bit 2 draining; other bits 0

:func:`decode_services` is total: it returns the services or raises DecodeError, and accepts
only the canonical form, so ``encode(decode(b)) == b`` for everything it accepts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hyphal.membership.record import MAX_EXTENSION, is_label
from hyphal.services.directory import Proto
from hyphal.services.grant import PROOF_SIZE
from hyphal.wire.errors import DecodeError

SECTION_SERVICES = 1
MAX_SERVICES = 16
MAX_ENDPOINTS = 8
FLAG_PROOF = 0x01
EP_UDP = 0x01
EP_HEALTHY = 0x02
EP_DRAINING = 0x04
_EP = struct.Struct(">HBB")
_SECTION = struct.Struct(">BH")


class ExtensionTooLarge(ValueError):
    """Our services do not fit the record's extension; the message says by how much."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    port: int
    proto: Proto
    healthy: bool
    draining: bool
    weight: int

    @property
    def order(self) -> tuple[int, int]:
        return (1 if self.proto == "udp" else 0, self.port)


@dataclass(frozen=True, slots=True)
class PublishedService:
    name: str
    proof: bytes | None
    endpoints: tuple[Endpoint, ...]


def encode_services(services: list[PublishedService] | tuple[PublishedService, ...]) -> bytes:
    """The section value for ``services`` (sorted and checked here); ValueError if invalid."""
    ordered = sorted(services, key=lambda s: s.name)
    if not 1 <= len(ordered) <= MAX_SERVICES:
        raise ValueError(f"1..{MAX_SERVICES} services per node, got {len(ordered)}")
    if len({s.name for s in ordered}) != len(ordered):
        raise ValueError("service names must be unique")
    out = [bytes([len(ordered)])]
    for s in ordered:
        if not is_label(s.name):
            raise ValueError(f"service name {s.name!r} is not a DNS label")
        name = s.name.encode()
        out.append(bytes([len(name)]) + name)
        if s.proof is not None:
            if len(s.proof) != PROOF_SIZE:
                raise ValueError(f"a grant proof is {PROOF_SIZE} bytes")
            out.append(bytes([FLAG_PROOF]) + s.proof)
        else:
            out.append(b"\x00")
        eps = sorted(s.endpoints, key=lambda e: e.order)
        if not 1 <= len(eps) <= MAX_ENDPOINTS:
            raise ValueError(f"1..{MAX_ENDPOINTS} ports per service, got {len(eps)}")
        if len({e.order for e in eps}) != len(eps):
            raise ValueError(f"service {s.name}: a port/proto is listed twice")
        out.append(bytes([len(eps)]))
        for e in eps:
            if not 1 <= e.port <= 65535 or not 1 <= e.weight <= 255:
                raise ValueError(f"service {s.name}: port 1..65535 and weight 1..255")
            flags = (
                (EP_UDP if e.proto == "udp" else 0)
                | (EP_HEALTHY if e.healthy else 0)
                | (EP_DRAINING if e.draining else 0)
            )
            out.append(_EP.pack(e.port, flags, e.weight))
    return b"".join(out)


def decode_services(value: bytes) -> tuple[PublishedService, ...]:
    """The services in a section value; raises DecodeError unless canonical and in bounds."""
    pos = 0

    def take(n: int, what: str) -> bytes:
        nonlocal pos
        if pos + n > len(value):
            raise DecodeError(f"services extension truncated in {what}")
        chunk = value[pos : pos + n]
        pos += n
        return chunk

    count = take(1, "count")[0]
    if not 1 <= count <= MAX_SERVICES:
        raise DecodeError(f"services extension lists {count} services; 1..{MAX_SERVICES}")
    services: list[PublishedService] = []
    for _ in range(count):
        raw_name = take(take(1, "name length")[0], "name")
        try:
            name = raw_name.decode()
        except UnicodeDecodeError:
            raise DecodeError("services extension: a name is not UTF-8") from None
        if not is_label(name):
            raise DecodeError("services extension: a name is not a DNS label")
        if services and name <= services[-1].name:
            raise DecodeError("services extension: names not sorted and unique")
        flags = take(1, "flags")[0]
        if flags & ~FLAG_PROOF:
            raise DecodeError(f"services extension: reserved service flag bits {flags:#x}")
        proof = take(PROOF_SIZE, "grant proof") if flags & FLAG_PROOF else None
        n_eps = take(1, "endpoint count")[0]
        if not 1 <= n_eps <= MAX_ENDPOINTS:
            raise DecodeError(f"services extension: {n_eps} ports; 1..{MAX_ENDPOINTS}")
        eps: list[Endpoint] = []
        for _ in range(n_eps):
            port, ep_flags, weight = _EP.unpack(take(_EP.size, "endpoint"))
            if ep_flags & ~(EP_UDP | EP_HEALTHY | EP_DRAINING):
                raise DecodeError(f"services extension: reserved port flag bits {ep_flags:#x}")
            if port == 0 or weight == 0:
                raise DecodeError("services extension: port and weight must not be 0")
            ep = Endpoint(
                port,
                "udp" if ep_flags & EP_UDP else "tcp",
                bool(ep_flags & EP_HEALTHY),
                bool(ep_flags & EP_DRAINING),
                weight,
            )
            if eps and ep.order <= eps[-1].order:
                raise DecodeError("services extension: ports not sorted and unique")
            eps.append(ep)
        services.append(PublishedService(name, proof, tuple(eps)))
    if pos != len(value):
        raise DecodeError(f"services extension has {len(value) - pos} trailing bytes")
    return tuple(services)


def split_sections(extension: bytes) -> dict[int, bytes]:
    """The sections of a record's extension by type; raises DecodeError unless canonical."""
    out: dict[int, bytes] = {}
    pos, last = 0, -1
    while pos < len(extension):
        if pos + _SECTION.size > len(extension):
            raise DecodeError("record extension truncated in a section header")
        kind, length = _SECTION.unpack_from(extension, pos)
        pos += _SECTION.size
        if kind <= last:
            raise DecodeError("record extension: section types not ascending and unique")
        if length == 0 or pos + length > len(extension):
            raise DecodeError("record extension: a section is empty or truncated")
        out[kind] = extension[pos : pos + length]
        pos += length
        last = kind
    return out


def join_sections(sections: dict[int, bytes]) -> bytes:
    """The extension holding ``sections`` (empty values are left out)."""
    return b"".join(
        _SECTION.pack(kind, len(value)) + value for kind, value in sorted(sections.items()) if value
    )


def services_of(extension: bytes) -> tuple[PublishedService, ...]:
    """The services a record's extension publishes (empty: none); raises DecodeError."""
    if not extension:
        return ()
    value = split_sections(extension).get(SECTION_SERVICES)
    return () if value is None else decode_services(value)


def with_services(extension: bytes, services: list[PublishedService]) -> bytes:
    """``extension`` with our section replaced by ``services`` (other sections kept).

    Raises ExtensionTooLarge when the result would not fit :data:`MAX_EXTENSION`."""
    try:
        sections = split_sections(extension)
    except DecodeError:
        sections = {}  # our own old bytes were not canonical: start afresh
    sections[SECTION_SERVICES] = encode_services(services) if services else b""
    sections = {k: v for k, v in sections.items() if v}
    out = join_sections(sections)
    if len(out) > MAX_EXTENSION:
        raise ExtensionTooLarge(
            f"the services need {len(out)} bytes of the member record's {MAX_EXTENSION}-byte "
            f"extension ({len(out) - MAX_EXTENSION} over): fewer services or ports, or shorter "
            "names (each owner grant takes 104 bytes)"
        )
    return out
