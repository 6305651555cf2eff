"""Noise framework primitives for one protocol: ``Noise_XXpsk0_25519_AESGCM_SHA256``.

This follows the Noise specification (revision 34): ``CipherState``, ``SymmetricState`` and
``HandshakeState`` with the ``XXpsk0`` pattern::

    -> psk, e
    <- e, ee, s, es
    -> s, se

It is written here on top of ``cryptography`` (X25519, AES-256-GCM) and the standard library's
HMAC-SHA256 rather than taken from a library: the Python Noise packages (``noiseprotocol``,
``dissononce``) have had no release since 2020. Only one pattern, DH, cipher and hash are supported,
which keeps the code short enough to review; it is checked against a published known-answer vector
(snow's ``test_XXpsk0_expected_value``) in ``tests/unit/crypto/test_noise.py``.

Everything is sans-IO: no sockets, no clocks. Ephemeral keys may be injected for tests.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PROTOCOL_NAME = b"Noise_XXpsk0_25519_AESGCM_SHA256"
DHLEN = 32
HASHLEN = 32
TAGLEN = 16
MAX_NONCE = 2**64 - 1  # reserved by the spec for rekey

_NONCE = struct.Struct(">4xQ")  # AESGCM nonce in Noise: 4 zero bytes + 64-bit big-endian counter
_REKEY_NONCE = _NONCE.pack(MAX_NONCE)
_ZERO_KEY = bytes(32)


class NoiseError(Exception):
    """A handshake step failed; ``reason`` is a machine code ("decrypt", "bad-key", "malformed")."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def nonce_bytes(n: int) -> bytes:
    """The 12-byte AES-GCM nonce Noise uses for counter ``n``."""
    return _NONCE.pack(n)


def rekey(key: bytes) -> bytes:
    """Noise ``REKEY(k)``: the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes)."""
    return AESGCM(key).encrypt(_REKEY_NONCE, _ZERO_KEY, b"")[:32]


def public_bytes(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def dh(private: X25519PrivateKey, public: bytes) -> bytes:
    """X25519; a low-order or otherwise unusable peer key becomes ``NoiseError("bad-key")``."""
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError as exc:  # cryptography rejects an all-zero shared secret
        raise NoiseError("bad-key", "peer sent a low-order or invalid X25519 key") from exc


def hkdf(chaining_key: bytes, ikm: bytes, outputs: int) -> tuple[bytes, ...]:
    """Noise ``HKDF`` (HMAC-SHA256 based, 2 or 3 outputs)."""
    temp = hmac.digest(chaining_key, ikm, "sha256")
    out1 = hmac.digest(temp, b"\x01", "sha256")
    out2 = hmac.digest(temp, out1 + b"\x02", "sha256")
    if outputs == 2:
        return out1, out2
    return out1, out2, hmac.digest(temp, out2 + b"\x03", "sha256")


class CipherState:
    """A key (or none) and a 64-bit nonce counter."""

    __slots__ = ("_aead", "k", "n")

    def __init__(self, key: bytes | None = None) -> None:
        self.k: bytes | None = None
        self._aead: AESGCM | None = None
        self.n = 0
        if key is not None:
            self.initialize_key(key)

    def initialize_key(self, key: bytes) -> None:
        self.k = key
        self._aead = AESGCM(key)
        self.n = 0

    def has_key(self) -> bool:
        return self.k is not None

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        if self.n >= MAX_NONCE:
            raise NoiseError("malformed", "nonce space exhausted")
        out = self._aead.encrypt(_NONCE.pack(self.n), plaintext, ad)
        self.n += 1
        return out

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self._aead is None:
            return ciphertext
        if self.n >= MAX_NONCE:
            raise NoiseError("malformed", "nonce space exhausted")
        try:
            out = self._aead.decrypt(_NONCE.pack(self.n), ciphertext, ad)
        except InvalidTag as exc:
            raise NoiseError("decrypt", "handshake message failed authentication") from exc
        self.n += 1
        return out


class SymmetricState:
    """Chaining key, handshake hash and the current CipherState."""

    def __init__(self, protocol_name: bytes = PROTOCOL_NAME) -> None:
        if len(protocol_name) <= HASHLEN:
            self.h = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            self.h = hashlib.sha256(protocol_name).digest()
        self.ck = self.h
        self.cs = CipherState()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = hkdf(self.ck, ikm, 2)
        self.cs.initialize_key(temp_k)

    def mix_hash(self, data: bytes) -> None:
        self.h = hashlib.sha256(self.h + data).digest()

    def mix_key_and_hash(self, ikm: bytes) -> None:
        self.ck, temp_h, temp_k = hkdf(self.ck, ikm, 3)
        self.mix_hash(temp_h)
        self.cs.initialize_key(temp_k)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cs.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cs.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[bytes, bytes]:
        """The two transport keys: (initiator -> responder, responder -> initiator)."""
        k1, k2 = hkdf(self.ck, b"", 2)
        return k1, k2


# Message patterns of XXpsk0, one tuple of tokens per message, alternating from the initiator.
XXPSK0: tuple[tuple[str, ...], ...] = (
    ("psk", "e"),
    ("e", "ee", "s", "es"),
    ("s", "se"),
)


class HandshakeState:
    """The XXpsk0 handshake. Call ``write_message`` / ``read_message`` in pattern order."""

    def __init__(
        self,
        *,
        initiator: bool,
        static: X25519PrivateKey,
        psk: bytes,
        prologue: bytes = b"",
        ephemeral: X25519PrivateKey | None = None,
    ) -> None:
        if len(psk) != 32:
            raise ValueError("a Noise PSK has 32 bytes")
        self.initiator = initiator
        self.ss = SymmetricState()
        self.ss.mix_hash(prologue)
        self.s = static
        self.s_pub = public_bytes(static)
        self.e = ephemeral
        self.e_pub: bytes | None = None
        self.re: bytes | None = None
        self.rs: bytes | None = None
        self.psk = psk
        self.index = 0  # next message pattern to process

    @property
    def complete(self) -> bool:
        return self.index >= len(XXPSK0)

    def my_turn(self) -> bool:
        """Whether the next message is ours to write."""
        return (self.index % 2 == 0) == self.initiator

    def _dh_token(self, token: str) -> None:
        assert self.e is not None and self.re is not None
        if token == "ee":
            self.ss.mix_key(dh(self.e, self.re))
            return
        # es: DH(initiator e, responder s); se: DH(initiator s, responder e).
        if (token == "es") == self.initiator:
            assert self.rs is not None
            self.ss.mix_key(dh(self.e, self.rs))
        else:
            self.ss.mix_key(dh(self.s, self.re))

    def write_message(self, payload: bytes) -> bytes:
        if self.complete or not self.my_turn():
            raise NoiseError("malformed", "not our turn to write a handshake message")
        out = bytearray()
        for token in XXPSK0[self.index]:
            if token == "psk":
                self.ss.mix_key_and_hash(self.psk)
            elif token == "e":
                if self.e is None:
                    self.e = X25519PrivateKey.generate()
                self.e_pub = public_bytes(self.e)
                out += self.e_pub
                self.ss.mix_hash(self.e_pub)
                self.ss.mix_key(self.e_pub)  # psk modifier: "e" also calls MixKey
            elif token == "s":
                out += self.ss.encrypt_and_hash(self.s_pub)
            else:
                self._dh_token(token)
        out += self.ss.encrypt_and_hash(payload)
        self.index += 1
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        if self.complete or self.my_turn():
            raise NoiseError("malformed", "not the peer's turn to send a handshake message")
        pos = 0
        for token in XXPSK0[self.index]:
            if token == "psk":
                self.ss.mix_key_and_hash(self.psk)
            elif token == "e":
                if len(message) < pos + DHLEN:
                    raise NoiseError("malformed", "handshake message too short for a key")
                self.re = bytes(message[pos : pos + DHLEN])
                pos += DHLEN
                self.ss.mix_hash(self.re)
                self.ss.mix_key(self.re)
            elif token == "s":
                size = DHLEN + (TAGLEN if self.ss.cs.has_key() else 0)
                if len(message) < pos + size:
                    raise NoiseError("malformed", "handshake message too short for a key")
                self.rs = self.ss.decrypt_and_hash(bytes(message[pos : pos + size]))
                pos += size
            else:
                self._dh_token(token)
        if len(message) - pos < TAGLEN:
            raise NoiseError("malformed", "handshake message too short for its payload tag")
        payload = self.ss.decrypt_and_hash(bytes(message[pos:]))
        self.index += 1
        return payload

    def split(self) -> tuple[bytes, bytes]:
        """(send key, receive key) for this side once the handshake is complete."""
        if not self.complete:
            raise NoiseError("malformed", "handshake not complete")
        k1, k2 = self.ss.split()
        return (k1, k2) if self.initiator else (k2, k1)

    @property
    def handshake_hash(self) -> bytes:
        """The final ``h``: a channel binding both sides agree on."""
        return self.ss.h
