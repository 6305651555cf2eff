"""Link record cipher: what flows on a TCP link after the handshake.

A record is ``u32 length | AES-256-GCM(plaintext) ‖ tag``. ``length`` counts the ciphertext and
its 16-byte tag and is the AEAD's associated data. Each direction has its own key (from the Noise
split) and an implicit 64-bit counter nonce (``4 zero bytes | u64 big-endian``, as Noise's AESGCM
nonce), so records cannot be reordered, dropped or replayed without the next record failing.

Every :data:`REKEY_INTERVAL` records both ends replace the direction's key with Noise ``REKEY(k)``
at the same record number (no signalling needed: TCP delivers records in order). This keeps the data
encrypted under one AES-GCM key far below the usual per-key limits even at gigabit rates and means
an old key is no longer held once it has been rotated away.

Performance: AESGCM objects are cached (one per direction, replaced only on rekey); ``seal``
returns ``bytes`` (one copy to prepend the length); ``feed`` decrypts records in place from the
received chunk when nothing is buffered, copying only an incomplete tail.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hyphal.crypto.noise import rekey
from hyphal.wire.errors import DecodeError

TAG_SIZE = 16
LENGTH_SIZE = 4
MAX_RECORD_PLAINTEXT = 1 << 20  # 1 MiB
MAX_RECORD_CIPHERTEXT = MAX_RECORD_PLAINTEXT + TAG_SIZE
REKEY_INTERVAL = 1 << 16  # records per key and direction
MAX_COUNTER = 2**64 - 2  # 2^64-1 is reserved for REKEY

_U32 = struct.Struct(">I")
_NONCE = struct.Struct(">4xQ")


class RecordSender:
    """Seals plaintexts into records for one direction of a link."""

    __slots__ = ("_aead", "_key", "_n")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a record key has 32 bytes")
        self._key = key
        self._aead = AESGCM(key)
        self._n = 0

    @property
    def counter(self) -> int:
        """Records sealed so far (the next record's nonce)."""
        return self._n

    def seal(self, plaintext: bytes | bytearray | memoryview) -> bytes:
        """The full record (length prefix included) carrying ``plaintext``."""
        size = len(plaintext)
        if size > MAX_RECORD_PLAINTEXT:
            raise ValueError(f"record plaintext of {size} bytes exceeds {MAX_RECORD_PLAINTEXT}")
        n = self._n
        if n > MAX_COUNTER:
            raise OverflowError("record counter exhausted; the link must be re-established")
        header = _U32.pack(size + TAG_SIZE)
        out = header + self._aead.encrypt(_NONCE.pack(n), plaintext, header)
        n += 1
        self._n = n
        if n % REKEY_INTERVAL == 0:
            self._key = rekey(self._key)
            self._aead = AESGCM(self._key)
        return out


class RecordReceiver:
    """Reassembles records from a byte stream and opens them, in order.

    After any error (oversize length, failed authentication) the receiver is poisoned: the link
    must be closed, and further ``feed`` calls raise again.
    """

    __slots__ = ("_aead", "_buffer", "_failed", "_key", "_n")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a record key has 32 bytes")
        self._key = key
        self._aead = AESGCM(key)
        self._n = 0
        self._buffer = bytearray()
        self._failed: str | None = None

    @property
    def counter(self) -> int:
        """Records opened so far."""
        return self._n

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete record held back (at most 4 + MAX_RECORD_CIPHERTEXT)."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Feed stream bytes; return the plaintexts of every record completed by them."""
        if self._failed is not None:
            raise DecodeError(self._failed)
        buffer = self._buffer
        try:
            if buffer:
                buffer += data
                with memoryview(buffer) as view:
                    out, used = self._open_records(view)
                del buffer[:used]
            else:
                with memoryview(data) as view:
                    out, used = self._open_records(view)
                    if used < len(view):
                        buffer += view[used:]
        except DecodeError:
            buffer.clear()  # the views are released by now
            raise
        return out

    def _fail(self, message: str) -> DecodeError:
        self._failed = message
        return DecodeError(message)

    def _open_records(self, view: memoryview) -> tuple[list[bytes], int]:
        out: list[bytes] = []
        pos = 0
        end_of_data = len(view)
        unpack = _U32.unpack_from
        while end_of_data - pos >= LENGTH_SIZE:
            (length,) = unpack(view, pos)
            if length > MAX_RECORD_CIPHERTEXT:
                raise self._fail(f"record length {length} exceeds {MAX_RECORD_CIPHERTEXT}")
            if length < TAG_SIZE:
                raise self._fail(f"record length {length} is shorter than the tag")
            end = pos + LENGTH_SIZE + length
            if end > end_of_data:
                break
            n = self._n
            if n > MAX_COUNTER:
                raise self._fail("record counter exhausted")
            try:
                plaintext = self._aead.decrypt(
                    _NONCE.pack(n), view[pos + LENGTH_SIZE : end], view[pos : pos + LENGTH_SIZE]
                )
            except InvalidTag:
                raise self._fail(f"record {n} failed authentication") from None
            out.append(plaintext)
            n += 1
            self._n = n
            if n % REKEY_INTERVAL == 0:
                self._key = rekey(self._key)
                self._aead = AESGCM(self._key)
            pos = end
        return out, pos
