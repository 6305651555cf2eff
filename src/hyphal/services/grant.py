"""Service grants: the owner of a service allows one node's key to serve it until an expiry.

Wire form (big-endian)::

    u8   format (1)
    str8 service name (a DNS label)
    32 B instance public key (the node allowed to serve)
    32 B owner public key (the signer)
    u32  since   (Unix seconds: when the owner first claimed the name; first claim wins)
    u32  expires (Unix seconds)
    64 B XEdDSA signature over CONTEXT | network id (16 B) | every byte above

A grant is handed to the instance as text (``hsg1.`` + base64url of the wire form) by
``hyphal service grant``; inside a member record's extension only owner, since, expires and the
signature travel (the service name and the instance key are implied by where it sits). Who may
be an owner is the directory's policy (docs/services.md, "Authorisation"), not the grant's.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from hyphal.crypto.signing import SIGNATURE_SIZE, Signer, Verifier
from hyphal.membership.record import is_label, network_id
from hyphal.wire.errors import DecodeError

FORMAT = 1
CONTEXT = b"hyphal service grant v1\0"
TEXT_PREFIX = "hsg1."
_TAIL = struct.Struct(">32s32sII")
PROOF_SIZE = 32 + 4 + 4 + SIGNATURE_SIZE
"""Bytes of a grant inside a record extension: owner, since, expires, signature."""


@dataclass(frozen=True, slots=True)
class Grant:
    service: str
    instance: bytes
    owner: bytes
    since: int
    expires: int
    signature: bytes = bytes(SIGNATURE_SIZE)

    def body(self) -> bytes:
        name = self.service.encode()
        return (
            bytes([FORMAT, len(name)])
            + name
            + _TAIL.pack(self.instance, self.owner, self.since, self.expires)
        )

    def signed_message(self, network: bytes) -> bytes:
        return CONTEXT + network_id(network) + self.body()

    def verify(self, verifier: Verifier, network: bytes) -> bool:
        return verifier.verify(self.owner, self.signed_message(network), self.signature)

    def valid_at(self, wall: float) -> bool:
        return self.since <= self.expires and wall < self.expires

    def encode(self) -> bytes:
        return self.body() + self.signature

    def text(self) -> str:
        return TEXT_PREFIX + base64.urlsafe_b64encode(self.encode()).decode().rstrip("=")

    def proof(self) -> bytes:
        """What travels in the record extension (see :mod:`hyphal.services.extension`)."""
        return self.owner + struct.pack(">II", self.since, self.expires) + self.signature


def make_grant(
    signer: Signer,
    network: bytes,
    *,
    service: str,
    instance: bytes,
    owner: bytes,
    since: int,
    expires: int,
) -> Grant:
    if not is_label(service):
        raise ValueError(f"service name {service!r} is not a DNS label")
    if len(instance) != 32 or len(owner) != 32:
        raise ValueError("instance and owner must be 32-byte public keys")
    if not 0 <= since <= expires < 1 << 32:
        raise ValueError("since must not be after expires (Unix seconds)")
    unsigned = Grant(service, instance, owner, since, expires)
    return Grant(
        service, instance, owner, since, expires, signer.sign(unsigned.signed_message(network))
    )


def decode_grant(data: bytes) -> Grant:
    """The grant in ``data`` (exactly one); raises DecodeError."""
    if len(data) < 2:
        raise DecodeError("service grant too short")
    if data[0] != FORMAT:
        raise DecodeError(f"service grant format {data[0]} is not {FORMAT}")
    n = data[1]
    if len(data) != 2 + n + _TAIL.size + SIGNATURE_SIZE:
        raise DecodeError(f"service grant of {len(data)} bytes has the wrong length")
    try:
        service = data[2 : 2 + n].decode()
    except UnicodeDecodeError:
        raise DecodeError("service grant: the service name is not UTF-8") from None
    if not is_label(service):
        raise DecodeError("service grant: the service name is not a DNS label")
    instance, owner, since, expires = _TAIL.unpack_from(data, 2 + n)
    if since > expires:
        raise DecodeError("service grant: since is after expires")
    return Grant(service, instance, owner, since, expires, data[2 + n + _TAIL.size :])


def parse_grant_text(text: str) -> Grant:
    """A grant from its ``hsg1.`` text; raises DecodeError saying what is wrong."""
    raw = text.strip()
    if not raw.startswith(TEXT_PREFIX):
        raise DecodeError(
            f"a service grant starts with {TEXT_PREFIX!r} (from 'hyphal service grant')"
        )
    body = raw[len(TEXT_PREFIX) :]
    if len(body) > 400:
        raise DecodeError("service grant text too long")
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise DecodeError("service grant text is not base64url") from None
    grant = decode_grant(data)
    if grant.text() != raw:
        raise DecodeError("service grant text is not canonical")
    return grant


def grant_from_proof(service: str, instance: bytes, proof: bytes) -> Grant:
    """The full grant a record's extension implies (the proof's length is checked by the codec)."""
    if len(proof) != PROOF_SIZE:
        raise DecodeError(f"service grant proof must be {PROOF_SIZE} bytes")
    since, expires = struct.unpack_from(">II", proof, 32)
    return Grant(service, instance, proof[:32], since, expires, proof[40:])
