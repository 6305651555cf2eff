"""End-to-end seal/open of data packets between overlay nodes (layout in :mod:`hyphal.wire.data`).

Key schedule, per direction and sender session::

    shared = X25519(our static key, peer static key)                (cached per peer, LRU)
    key    = HKDF-SHA256(shared, salt=session id,
                         info=b"hyphal e2e v1" | sender pk | receiver pk)   -> 32 bytes
    nonce  = 4 zero bytes | counter u64
    AAD    = packet bytes 0 and 2..65 (everything in the header except the hop limit)

Each :class:`E2ECrypto` draws a random 8-byte session id when created and a new one after
:data:`SESSION_PACKETS` packets; the counter is one per session shared by all destinations, so a
(key, nonce) pair can never repeat even if a per-destination cache entry is evicted. The receiver
keeps an RFC 6479 replay window per (sender key, session id) in a bounded LRU; a session, and the
sender's DH result, enter it only after a packet of it has authenticated, so forged packets create
no state.

Compared with Mycelium's end-to-end layer this adds a KDF with domain separation and direction
separation, counter nonces instead of random ones, an authenticated header (only the hop limit is
excluded), a replay window and a key rotation per session.

Limits, stated plainly:

* No forward secrecy: every key derives from the two static keys. Whoever later obtains either
  node's private key can decrypt recorded traffic between them. (Links are protected separately by
  the Noise handshake, whose ephemeral keys do give forward secrecy hop by hop.)
* Replay protection covers one receiver lifetime. A session evicted from the LRU of
  :data:`DEFAULT_MAX_SESSIONS` leaves its highest counter as a floor (LRU of
  :data:`DEFAULT_MAX_FLOORS`), so its recorded packets stay replays. Both are also quota'd per
  sender key (:mod:`hyphal.crypto.rxsessions`): one sender opening session after session evicts
  only its own. A receiver that restarts, or whose floors many distinct sender keys flush, can be
  replayed a recorded packet once more. A sender restart is harmless (new session id).
  Applications that care (the bus) deduplicate by message id.
* A session older than the window (4032 packets) loses reordered packets older than that.
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hyphal.crypto.rxsessions import ReceiveSessions
from hyphal.crypto.session import MAX_RECORD_PLAINTEXT
from hyphal.identity import NodeIdentity, address_bytes_for_public_key
from hyphal.wire import data as wire
from hyphal.wire.link import FRAME_HEADER_SIZE

INFO_LABEL = b"hyphal e2e v1"
SESSION_PACKETS = 1 << 31
DEFAULT_MAX_PEERS = 4096
DEFAULT_MAX_SESSIONS = 4096
DEFAULT_MAX_FLOORS = 16384
# Per sender key: live sessions (one per sender restart) and floors of evicted ones.
DEFAULT_SESSIONS_PER_SOURCE = 8
DEFAULT_FLOORS_PER_SOURCE = 64
# The largest packet one link frame can carry; seal refuses anything larger, so no hop ever holds
# a packet it cannot send on (an echo reply is one byte longer than its request).
MAX_PACKET_SIZE = MAX_RECORD_PLAINTEXT - FRAME_HEADER_SIZE
MAX_PLAINTEXT_SIZE = MAX_PACKET_SIZE - wire.HEADER_SIZE - wire.TAG_SIZE

_HEADER = struct.Struct(">BB16s32s8sQ")
_NONCE_PREFIX = bytes(4)
_H = wire.HEADER_SIZE
_TAG = wire.TAG_SIZE


class E2EError(Exception):
    """A packet that cannot be opened. ``reason``: "malformed", "bad-tag", "replay",
    "not-for-us" or "bad-key"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class OpenedPacket(NamedTuple):
    """An opened packet; ``body`` is a view into the decrypted plaintext (no copy)."""

    src_public_key: bytes
    kind: int
    body: memoryview
    hop_limit: int


def derive_key(shared: bytes, session_id: bytes, sender: bytes, receiver: bytes) -> bytes:
    """The AES-256-GCM key of one direction and sender session."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=session_id,
        info=INFO_LABEL + sender + receiver,
    ).derive(shared)


class E2ECrypto:
    """Seals packets for other nodes and opens packets addressed to this node."""

    def __init__(
        self,
        identity: NodeIdentity,
        urandom: Callable[[int], bytes] = os.urandom,
        *,
        max_peers: int = DEFAULT_MAX_PEERS,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        max_floors: int = DEFAULT_MAX_FLOORS,
        per_source_sessions: int = DEFAULT_SESSIONS_PER_SOURCE,
        per_source_floors: int = DEFAULT_FLOORS_PER_SOURCE,
    ) -> None:
        self.identity = identity
        self.public_key = identity.public_key
        self.address = identity.address_bytes
        self._urandom = urandom
        self._max_peers = max_peers
        self._shared: OrderedDict[bytes, bytes] = OrderedDict()
        # destination public key -> (session id, destination address, AESGCM)
        self._tx: OrderedDict[bytes, tuple[bytes, bytes, AESGCM]] = OrderedDict()
        self._rx = ReceiveSessions(max_sessions, max_floors, per_source_sessions, per_source_floors)
        self._session_id = b""
        self._counter = 0
        self._new_session()

    @property
    def session_id(self) -> bytes:
        return self._session_id

    @property
    def counter(self) -> int:
        """The counter the next sealed packet will carry."""
        return self._counter

    def _new_session(self) -> None:
        session = self._urandom(wire.SESSION_ID_SIZE)
        if len(session) != wire.SESSION_ID_SIZE:
            raise ValueError("urandom returned the wrong number of bytes")
        self._session_id = bytes(session)
        self._counter = 0

    def _shared_secret(self, peer: bytes) -> bytes:
        """The cached X25519 result for ``peer``, computed and cached on a miss."""
        shared = self._shared.get(peer)
        if shared is not None:
            self._shared.move_to_end(peer)
            return shared
        shared = self._compute_shared(peer)
        self._cache_shared(peer, shared)
        return shared

    def _compute_shared(self, peer: bytes) -> bytes:
        if len(peer) != wire.PUBLIC_KEY_SIZE:
            raise E2EError("bad-key", f"a public key has 32 bytes, got {len(peer)}")
        try:
            return self.identity.shared_secret(peer)
        except ValueError as exc:
            raise E2EError("bad-key", "low-order or invalid X25519 public key") from exc

    def _cache_shared(self, peer: bytes, shared: bytes) -> None:
        self._shared[peer] = shared
        self._shared.move_to_end(peer)
        if len(self._shared) > self._max_peers:
            self._shared.popitem(last=False)

    def seal(
        self,
        dst_public_key: bytes,
        kind: int,
        body: bytes | bytearray | memoryview,
        hop_limit: int = wire.DEFAULT_HOP_LIMIT,
    ) -> bytearray:
        """The full packet carrying ``kind | body`` for the node owning ``dst_public_key``."""
        if not 0 <= kind <= 0xFF:
            raise ValueError("kind is a byte")
        return self.seal_plaintext(dst_public_key, bytes((kind,)) + body, hop_limit)

    def seal_plaintext(
        self,
        dst_public_key: bytes,
        plaintext: bytes | bytearray | memoryview,
        hop_limit: int = wire.DEFAULT_HOP_LIMIT,
    ) -> bytearray:
        """Like :meth:`seal`, for a plaintext that already starts with its kind byte (the data
        path reads packets in behind a kind byte, so nothing is copied before encryption)."""
        if not 0 <= hop_limit <= 0xFF:
            raise ValueError("hop limit is a byte")
        if len(plaintext) < 1:
            raise ValueError("a plaintext holds at least its kind byte")
        if len(plaintext) > MAX_PLAINTEXT_SIZE:
            raise E2EError(
                "too-big", f"plaintext of {len(plaintext)} bytes exceeds {MAX_PLAINTEXT_SIZE}"
            )
        if self._counter >= SESSION_PACKETS:
            self._new_session()
        session_id = self._session_id
        entry = self._tx.get(dst_public_key)
        if entry is None or entry[0] != session_id:
            shared = self._shared_secret(dst_public_key)
            key = derive_key(shared, session_id, self.public_key, dst_public_key)
            entry = (session_id, address_bytes_for_public_key(dst_public_key), AESGCM(key))
            self._tx[dst_public_key] = entry
            if len(self._tx) > self._max_peers:
                self._tx.popitem(last=False)
        else:
            self._tx.move_to_end(dst_public_key)
        counter = self._counter
        self._counter = counter + 1
        size = len(plaintext)
        out = bytearray(_H + size + _TAG)
        _HEADER.pack_into(
            out, 0, wire.VERSION, hop_limit, entry[1], self.public_key, session_id, counter
        )
        aad = bytes(out[0:1]) + bytes(out[2:_H])
        with memoryview(out) as view:
            entry[2].encrypt_into(_NONCE_PREFIX + bytes(out[58:_H]), plaintext, aad, view[_H:])
        return out

    def open(self, packet: bytes | bytearray | memoryview) -> OpenedPacket:
        """Authenticate and decrypt a packet addressed to this node."""
        size = len(packet)
        if size < wire.MIN_PACKET_SIZE:
            raise E2EError("malformed", f"data packet of {size} bytes is too short")
        view = packet if isinstance(packet, memoryview) else memoryview(packet)
        if view[0] != wire.VERSION:
            raise E2EError("malformed", f"data packet version {view[0]} is not {wire.VERSION}")
        header = bytes(view[:_H])
        if header[2:18] != self.address:
            raise E2EError("not-for-us", "packet is addressed to another node")
        src = header[18:50]
        session_key = (src, header[50:58])
        (counter,) = struct.unpack_from(">Q", header, 58)
        session = self._rx.get(session_key)
        if session is None:
            if counter <= self._rx.floor(session_key):
                raise E2EError("replay", f"counter {counter} is below the session's floor")
            # Nothing is cached before the packet authenticates: forged sources leave no state.
            shared = self._shared.get(src) or self._compute_shared(src)
            aead = AESGCM(derive_key(shared, session_key[1], src, self.public_key))
        elif counter <= session.floor or not session.window.check(counter):
            raise E2EError("replay", f"counter {counter} already seen or too old")
        else:
            aead = session.aead
        try:
            plaintext = aead.decrypt(
                _NONCE_PREFIX + header[58:_H], view[_H:], header[0:1] + header[2:_H]
            )
        except InvalidTag:
            raise E2EError("bad-tag", "packet failed authentication") from None
        if session is None:
            self._cache_shared(src, shared)
            session = self._rx.add(session_key, aead)
        session.window.update(counter)
        return OpenedPacket(src, plaintext[0], memoryview(plaintext)[1:], header[1])

    def decrypt_quote(self, dst_public_key: bytes, quoted: bytes | bytearray | memoryview) -> bytes:
        """Decrypt the start of a packet this node sealed for ``dst_public_key``, tag unchecked.

        A relay's notice quotes our sealed header and a prefix of its ciphertext. AES-GCM is
        counter mode, so that prefix decrypts without the tag (counter block 2 onwards, J0 + 1).
        Raises E2EError("malformed") for a quote without a valid header, E2EError("bad-key") for a
        key that admits no shared secret.
        """
        if len(quoted) < _H or quoted[0] != wire.VERSION:
            raise E2EError("malformed", "quoted packet has no valid header")
        session_id = bytes(quoted[50:58])
        key = derive_key(
            self._shared_secret(dst_public_key), session_id, self.public_key, dst_public_key
        )
        nonce = _NONCE_PREFIX + bytes(quoted[58:_H]) + b"\x00\x00\x00\x02"
        decryptor = Cipher(algorithms.AES(key), modes.CTR(nonce)).decryptor()
        return decryptor.update(bytes(quoted[_H:])) + decryptor.finalize()
