"""Link record cipher: what flows on a TCP link after the handshake.

A record is ``u32 length | AES-256-GCM(plaintext) ‖ tag``. ``length`` counts the ciphertext and
its 16-byte tag and is the AEAD's associated data. Each direction has its own key (from the Noise
split) and an implicit 64-bit counter nonce (``4 zero bytes | u64 big-endian``, as Noise's AESGCM
nonce), so records cannot be reordered, dropped or replayed without the next record failing.

Every :data:`REKEY_INTERVAL` records both ends replace the direction's key with Noise ``REKEY(k)``
at the same record number (no signalling needed: TCP delivers records in order). This keeps the data
encrypted under one AES-GCM key far below the usual per-key limits even at gigabit rates and means
an old key is no longer held once it has been rotated away.

Performance (this is the data path): AESGCM objects are cached (one per direction, replaced only
on rekey). ``seal`` encrypts straight into the record it returns, length prefix included, so a
plaintext is read once and nothing is copied. The receiver owns one growable buffer that a
``BufferedProtocol`` reads the socket into (``get_buffer``/``buffer_updated``): no per-read
allocation, no concatenation, records decrypted where they landed; only an incomplete record's
bytes move, to the front of the buffer, when room runs out.
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

    def seal(self, plaintext: bytes | bytearray | memoryview) -> bytearray:
        """The full record (length prefix included) carrying ``plaintext``."""
        size = len(plaintext)
        if size > MAX_RECORD_PLAINTEXT:
            raise ValueError(f"record plaintext of {size} bytes exceeds {MAX_RECORD_PLAINTEXT}")
        n = self._n
        if n > MAX_COUNTER:
            raise OverflowError("record counter exhausted; the link must be re-established")
        record = bytearray(LENGTH_SIZE + size + TAG_SIZE)
        _U32.pack_into(record, 0, size + TAG_SIZE)
        with memoryview(record) as view:
            self._aead.encrypt_into(
                _NONCE.pack(n), plaintext, view[:LENGTH_SIZE], view[LENGTH_SIZE:]
            )
        n += 1
        self._n = n
        if n % REKEY_INTERVAL == 0:
            self._key = rekey(self._key)
            self._aead = AESGCM(self._key)
        return record


INITIAL_BUFFER = 256 * 1024
MIN_READ = 64 * 1024


class RecordReceiver:
    """Reassembles records from a byte stream and opens them, in order.

    Bytes arrive either through ``get_buffer``/``buffer_updated`` (an asyncio BufferedProtocol
    reads the socket straight into our buffer) or through ``feed``. After any error (oversize
    length, failed authentication) the receiver is poisoned: the link must be closed, and further
    input raises again. The buffer grows only as far as one maximal record needs, and ``trim``
    gives it back when the link goes idle.
    """

    __slots__ = ("_aead", "_buf", "_end", "_failed", "_key", "_n", "_start")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a record key has 32 bytes")
        self._key = key
        self._aead = AESGCM(key)
        self._n = 0
        self._buf = bytearray(INITIAL_BUFFER)
        self._start = 0  # first byte not yet consumed
        self._end = 0  # end of received bytes
        self._failed: str | None = None

    @property
    def counter(self) -> int:
        """Records opened so far."""
        return self._n

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete record held back (at most 4 + MAX_RECORD_CIPHERTEXT)."""
        return self._end - self._start

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Writable space at the end of the buffer for the next socket read."""
        if self._failed is not None:
            raise DecodeError(self._failed)
        want = max(sizehint, MIN_READ)
        if len(self._buf) - self._end < want:
            pending = self._end - self._start
            needed = pending + want
            if self._start and pending < self._start:
                # Move the incomplete record to the front (it is shorter than what it frees).
                self._buf[:pending] = self._buf[self._start : self._end]
            elif needed > len(self._buf) or self._start:
                # A new, larger buffer: the old one may still be exported to the transport.
                size = len(self._buf)
                while size < needed:
                    size *= 2
                fresh = bytearray(max(size, len(self._buf)))
                fresh[:pending] = self._buf[self._start : self._end]
                self._buf = fresh
            self._start, self._end = 0, pending
        return memoryview(self._buf)[self._end :]

    @property
    def capacity(self) -> int:
        """Bytes the receive buffer holds on to (grows to fit one maximal record)."""
        return len(self._buf)

    def trim(self) -> None:
        """Give a grown buffer back (call when the link is idle); keeps an incomplete record."""
        pending = self._end - self._start
        if len(self._buf) <= INITIAL_BUFFER or pending > INITIAL_BUFFER - MIN_READ:
            return
        fresh = bytearray(INITIAL_BUFFER)  # a new buffer: the old one may still be exported
        fresh[:pending] = self._buf[self._start : self._end]
        self._buf = fresh
        self._start, self._end = 0, pending

    def buffer_updated(self, nbytes: int) -> list[bytes]:
        """``nbytes`` were written into the last ``get_buffer``; return every completed plaintext."""
        self._end += nbytes
        try:
            with memoryview(self._buf) as view:
                out, used = self._open_records(view[self._start : self._end])
        except DecodeError:
            self._start = self._end = 0
            raise
        self._start += used
        if self._start == self._end:
            self._start = self._end = 0
        return out

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Feed stream bytes; return the plaintexts of every record completed by them."""
        if self._failed is not None:
            raise DecodeError(self._failed)
        out: list[bytes] = []
        with memoryview(data) as source:
            pos, size = 0, len(source)
            while pos < size:
                space = self.get_buffer(size - pos)
                take = min(len(space), size - pos)
                space[:take] = source[pos : pos + take]
                space.release()
                out += self.buffer_updated(take)
                pos += take
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
