"""The link handshake: a cleartext preamble, then Noise ``XXpsk0`` (X25519, AES-256-GCM, SHA-256).

Stream layout, each side::

    preamble   "HYPHAL" | version u8 | network tag 16 B           (23 bytes, cleartext)
    messages   u16 length | Noise handshake message                (length 1..MAX_MESSAGE)
    reject     u16 0 | code u8                                     (responder only, then close)

The initiator sends its preamble and message 1 at once; the responder answers with its preamble,
then message 2 after reading message 1; the initiator sends message 3 and is done. Both sides must
send the same preamble (magic, version, tag), so a mismatch is reported precisely before any crypto;
the common preamble is the Noise prologue, so a tampered preamble cannot go unnoticed either.

The PSK binds the handshake to the network: for a private network it is
``HKDF-SHA256(ikm=network key, salt="hyphal network psk v1", info=network name)``; the public
network uses a fixed constant. Same network name but a different key shows up as a failure to
decrypt message 1 at the responder (``psk`` is mixed in before message 1's payload); the responder
then sends the unauthenticated reject code 1 so the initiator can log the same reason before
the close.

Static keys are exchanged encrypted (XX), so a passive observer learns neither identity; the
payloads of messages 2 and 3 carry the node's small ``local_payload`` blob (protocol version,
feature flags), authenticated by the peer's static key.

This module and :mod:`hyphal.crypto.noise` are sans-IO: bytes in, bytes out, no clocks or sockets.
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hyphal.crypto.noise import HandshakeState, NoiseError
from hyphal.crypto.session import RecordReceiver, RecordSender
from hyphal.identity import NodeIdentity

MAGIC = b"HYPHAL"
VERSION = 1
TAG_SIZE = 16
PREAMBLE_SIZE = len(MAGIC) + 1 + TAG_SIZE  # 23
PUBLIC_NETWORK_TAG = bytes(TAG_SIZE)
PUBLIC_NETWORK_PSK = hashlib.sha256(b"hyphal public network psk v1").digest()
PROLOGUE_LABEL = b"hyphal link handshake v1\x00"
MAX_PAYLOAD = 1024
# msg2 is the largest: e 32 + encrypted s 48 + payload + tag 16.
MAX_MESSAGE = 32 + 48 + MAX_PAYLOAD + 16
MAX_NETWORK_NAME = 64
NETWORK_KEY_SIZE = 32

REJECT_WRONG_NETWORK_KEY = 1
_REJECT_MESSAGES = {REJECT_WRONG_NETWORK_KEY: "wrong-network-key"}

_U16 = struct.Struct(">H")


class HandshakeError(Exception):
    """The handshake failed. ``reason`` is a machine code, ``str(exc)`` a sentence for the log.

    Reasons: "bad-magic", "version", "network-mismatch", "wrong-network-key", "decrypt",
    "bad-key" (low-order X25519 key), "self-connection", "rejected-by-peer", "malformed".
    ``reply`` holds bytes to write to the peer before closing (the reject code), else ``b""``.
    """

    def __init__(self, reason: str, message: str, reply: bytes = b"") -> None:
        super().__init__(message)
        self.reason = reason
        self.reply = reply


def network_tag(network_name: str | None) -> bytes:
    """The 16-byte preamble tag: zeros for the public network, else a hash of the name."""
    if network_name is None:
        return PUBLIC_NETWORK_TAG
    return hashlib.sha256(b"hyphal network tag v1\x00" + network_name.encode()).digest()[:TAG_SIZE]


def network_psk(network_name: str | None, network_key: bytes | None) -> bytes:
    """The Noise PSK of a network (see the module docstring)."""
    if network_name is None:
        return PUBLIC_NETWORK_PSK
    assert network_key is not None
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"hyphal network psk v1",
        info=network_name.encode(),
    ).derive(network_key)


def _check_network(network_name: str | None, network_key: bytes | None) -> None:
    if (network_name is None) != (network_key is None):
        raise ValueError("a private network needs both a network name and a network key")
    if network_name is not None:
        size = len(network_name.encode())
        if not 1 <= size <= MAX_NETWORK_NAME:
            raise ValueError(f"a network name has 1 to {MAX_NETWORK_NAME} UTF-8 bytes")
    if network_key is not None and len(network_key) != NETWORK_KEY_SIZE:
        raise ValueError(f"a network key has {NETWORK_KEY_SIZE} bytes")


def _describe(tag: bytes) -> str:
    if tag == PUBLIC_NETWORK_TAG:
        return "the public network"
    return f"a private network (tag {tag.hex()[:12]}…)"


class LinkHandshake:
    """Drives one side of the link handshake over a byte stream.

    Use: write ``initial_bytes()`` at connect, then for every chunk received write what
    ``receive(chunk)`` returns; when ``complete`` turns true, call ``split()`` for the record
    ciphers and the bytes that arrived after the handshake. On ``HandshakeError``, write
    ``exc.reply`` (may be empty) and close.
    """

    def __init__(
        self,
        identity: NodeIdentity,
        *,
        initiator: bool,
        network_name: str | None,
        network_key: bytes | None,
        local_payload: bytes = b"",
    ) -> None:
        _check_network(network_name, network_key)
        if len(local_payload) > MAX_PAYLOAD:
            raise ValueError(f"handshake payload of {len(local_payload)} bytes > {MAX_PAYLOAD}")
        self.identity = identity
        self.initiator = initiator
        self.network_name = network_name
        self._private = network_name is not None
        self._tag = network_tag(network_name)
        self._preamble = MAGIC + bytes([VERSION]) + self._tag
        self._payload = bytes(local_payload)
        self._noise = HandshakeState(
            initiator=initiator,
            static=identity.private_key,
            psk=network_psk(network_name, network_key),
            prologue=PROLOGUE_LABEL + self._preamble,
        )
        self._buffer = bytearray()
        self._got_preamble = False
        self._failed: HandshakeError | None = None
        self._split_done = False
        self.complete = False
        self.remote_public_key = b""
        self.remote_payload = b""

    # -- public API ---------------------------------------------------------------------------

    def initial_bytes(self) -> bytes:
        """What to send first: the preamble, plus message 1 for the initiator."""
        if not self.initiator:
            return self._preamble
        msg1 = self._noise.write_message(b"")  # msg1's payload is only PSK-protected: keep it empty
        return self._preamble + _U16.pack(len(msg1)) + msg1

    def receive(self, data: bytes | bytearray | memoryview) -> bytes:
        """Feed received bytes; return bytes to send (possibly ``b""``).

        Bytes that arrive after the handshake completes are kept for :meth:`split`.
        """
        if self._failed is not None:
            raise self._failed
        self._buffer += data
        if self.complete:
            return b""
        try:
            return self._process()
        except HandshakeError as exc:
            self._failed = exc
            self._buffer.clear()
            raise

    def split(self) -> tuple[RecordSender, RecordReceiver, bytes]:
        """The record ciphers of this link and any bytes already received after the handshake."""
        if not self.complete:
            raise RuntimeError("handshake not complete")
        if self._split_done:
            raise RuntimeError("split() may be called once")
        self._split_done = True
        send_key, receive_key = self._noise.split()
        leftover = bytes(self._buffer)
        self._buffer.clear()
        return RecordSender(send_key), RecordReceiver(receive_key), leftover

    @property
    def handshake_hash(self) -> bytes:
        """The Noise handshake hash (channel binding), valid once complete."""
        return self._noise.handshake_hash

    # -- internals ----------------------------------------------------------------------------

    def _process(self) -> bytes:
        out = bytearray()
        buffer = self._buffer
        if not self._got_preamble:
            if len(buffer) < PREAMBLE_SIZE:
                if not MAGIC.startswith(bytes(buffer[: len(MAGIC)])):
                    raise HandshakeError("bad-magic", "peer is not speaking the hyphal protocol")
                return b""
            self._check_preamble(bytes(buffer[:PREAMBLE_SIZE]))
            del buffer[:PREAMBLE_SIZE]
            self._got_preamble = True
        while not self.complete and len(buffer) >= 2:
            (length,) = _U16.unpack_from(buffer, 0)
            if length == 0:
                return self._reject_received()
            if length > MAX_MESSAGE:
                raise HandshakeError(
                    "malformed", f"handshake message of {length} bytes exceeds {MAX_MESSAGE}"
                )
            if len(buffer) < 2 + length:
                break
            message = bytes(buffer[2 : 2 + length])
            del buffer[: 2 + length]
            out += self._handle_message(message)
        return bytes(out)

    def _check_preamble(self, preamble: bytes) -> None:
        if preamble[: len(MAGIC)] != MAGIC:
            raise HandshakeError("bad-magic", "peer is not speaking the hyphal protocol")
        version = preamble[len(MAGIC)]
        if version != VERSION:
            raise HandshakeError(
                "version", f"peer speaks link protocol version {version}, we speak {VERSION}"
            )
        tag = preamble[len(MAGIC) + 1 :]
        if tag != self._tag:
            ours = f"network '{self.network_name}'" if self._private else "the public network"
            raise HandshakeError(
                "network-mismatch", f"peer is on {_describe(tag)}, we are on {ours}"
            )

    def _reject_received(self) -> bytes:
        if len(self._buffer) < 3:
            return b""
        code = self._buffer[2]
        reason = _REJECT_MESSAGES.get(code)
        if reason == "wrong-network-key" and self.initiator:
            raise HandshakeError(
                reason,
                f"peer rejected the handshake: same network name '{self.network_name}' "
                "but the network key differs",
            )
        raise HandshakeError("rejected-by-peer", f"peer rejected the handshake (code {code})")

    def _handle_message(self, message: bytes) -> bytes:
        noise = self._noise
        first = noise.index == 0
        try:
            payload = noise.read_message(message)
        except NoiseError as exc:
            if first and exc.reason == "decrypt" and not self.initiator:
                if self._private:
                    raise HandshakeError(
                        "wrong-network-key",
                        f"same network name '{self.network_name}' but the network key differs",
                        reply=_U16.pack(0) + bytes([REJECT_WRONG_NETWORK_KEY]),
                    ) from exc
                raise HandshakeError(
                    "decrypt", "handshake message 1 failed authentication"
                ) from exc
            raise HandshakeError(exc.reason, str(exc)) from exc
        if noise.rs is not None and not self.remote_public_key:
            if noise.rs == self.identity.public_key:
                raise HandshakeError("self-connection", "peer presents our own public key")
            self.remote_public_key = noise.rs
        if noise.index > 1:  # messages 2 and 3 carry the node payload; message 1 must be empty
            if len(payload) > MAX_PAYLOAD:
                raise HandshakeError("malformed", "handshake payload too large")
            self.remote_payload = payload
        elif payload:
            raise HandshakeError("malformed", "handshake message 1 carries a payload")
        if noise.complete:
            self.complete = True
            return b""
        try:
            reply = noise.write_message(self._payload)
        except NoiseError as exc:
            raise HandshakeError(exc.reason, str(exc)) from exc
        if noise.complete:
            self.complete = True
        return _U16.pack(len(reply)) + reply
