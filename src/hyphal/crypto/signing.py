"""Signatures made with a node's X25519 identity key (XEdDSA), verified as Ed25519.

Routing uses them to sign origin announcements, so that only the holder of a key can announce a
new seqno or router id for the /64 that key owns. XEdDSA (the Signal construction) lets the one
X25519 key both agree keys and sign; the `xeddsa` package implements it, and a signature verifies
with `cryptography`'s Ed25519 against the public key converted from Montgomery to Edwards form.
Low-order public keys never verify anything.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Protocol

import xeddsa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hyphal.identity import is_usable_public_key

SIGNATURE_SIZE = 64


class Signer(Protocol):
    def sign(self, message: bytes) -> bytes: ...


class Verifier(Protocol):
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool: ...


class XEdDSASigner:
    """Signs with the raw 32-byte X25519 private key."""

    def __init__(self, private_key: bytes) -> None:
        self._key = xeddsa.priv_force_sign(private_key, False)

    def sign(self, message: bytes) -> bytes:
        return bytes(xeddsa.ed25519_priv_sign(self._key, message, os.urandom(64)))


@lru_cache(maxsize=16384)
def _edwards_key(public_key: bytes) -> Ed25519PublicKey | None:
    # A low-order key maps to a small-order Edwards point, against which the forged signature
    # (R = identity, S = 0) verifies for about half of all messages; no node can hold one.
    if not is_usable_public_key(public_key):
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(
            bytes(xeddsa.curve25519_pub_to_ed25519_pub(public_key, False))
        )
    except (ValueError, xeddsa.XEdDSAException):
        return None


class XEdDSAVerifier:
    """Verifies XEdDSA signatures against X25519 public keys."""

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        if len(public_key) != 32 or len(signature) != SIGNATURE_SIZE:
            return False
        key = _edwards_key(public_key)
        if key is None:
            return False
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True
