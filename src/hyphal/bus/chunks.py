"""Chunk arithmetic and the receiver's reassembly buffer.

The sender splits a message into ``CHUNK_SIZE`` pieces. 16 KiB is chosen because a chunk plus the
bus header (<= 11 + 4 bytes, or ~320 bytes for an INIT) plus the end-to-end envelope (66-byte
header, 16-byte tag, 1 kind byte) stays far below the ~64 KiB a data packet may carry, so a chunk
is always one packet; at the same time it is large enough that per-packet costs (AES-GCM call,
header, ACK) are amortised over 16 KiB, and small enough that a single loss costs little to resend
and a bulk transfer does not monopolise a link (head-of-line delay of one 16 KiB record on a
1 Mbit/s link is ~130 ms).

``Reassembly`` writes each chunk straight into one preallocated ``bytearray`` (allocated on the
first chunk, after admission control), tracks arrival in a bitmap, and keeps a cumulative pointer,
so reassembly is O(n) in the message size with no quadratic copying.
"""

from __future__ import annotations

CHUNK_SIZE = 16 * 1024
MIN_CHUNK_SIZE = 1024
MAX_CHUNK_SIZE = 60 * 1024


def chunk_count(total: int, chunk_size: int) -> int:
    """How many chunks a message of ``total`` bytes has (0 for an empty message)."""
    return (total + chunk_size - 1) // chunk_size


def chunk_bounds(index: int, total: int, chunk_size: int) -> tuple[int, int]:
    """Byte range [start, end) of chunk ``index``."""
    start = index * chunk_size
    return start, min(start + chunk_size, total)


class Reassembly:
    """Receiver-side buffer of one incoming message."""

    __slots__ = ("_buf", "_have", "chunk_size", "count", "cumulative", "received", "total")

    def __init__(self, total: int, chunk_size: int) -> None:
        self.total = total
        self.chunk_size = chunk_size
        self.count = chunk_count(total, chunk_size)
        self._have = bytearray(self.count)
        self._buf: bytearray | None = None
        self.received = 0
        self.cumulative = 0  # every chunk below this index has arrived

    @property
    def complete(self) -> bool:
        return self.received == self.count

    @property
    def allocated(self) -> int:
        return (len(self._buf) if self._buf is not None else 0) + len(self._have)

    def has(self, index: int) -> bool:
        return 0 <= index < self.count and bool(self._have[index])

    def valid(self, index: int, length: int) -> bool:
        """Whether a chunk with this index and data length fits the announced message."""
        if not 0 <= index < self.count:
            return False
        start, end = chunk_bounds(index, self.total, self.chunk_size)
        return length == end - start

    def add(self, index: int, data: bytes) -> bool:
        """Store a chunk; False for a duplicate. The caller checked ``valid`` first."""
        if self._have[index]:
            return False
        if self._buf is None:
            self._buf = bytearray(self.total)
        start = index * self.chunk_size
        self._buf[start : start + len(data)] = data
        self._have[index] = 1
        self.received += 1
        while self.cumulative < self.count and self._have[self.cumulative]:
            self.cumulative += 1
        return True

    def sack_ranges(self, window: int, limit: int) -> tuple[tuple[int, int], ...]:
        """Runs of received chunks above the cumulative pointer within ``window`` chunks."""
        ranges: list[tuple[int, int]] = []
        have = self._have
        i = self.cumulative
        end = min(self.count, self.cumulative + window)
        while i < end and len(ranges) < limit:
            if have[i]:
                start = i
                while i < end and have[i]:
                    i += 1
                ranges.append((start, i))
            else:
                i += 1
        return tuple(ranges)

    def data(self) -> bytes:
        """The whole message (one copy); only meaningful when complete."""
        if self._buf is None:
            return b""
        out = bytes(self._buf)
        self._buf = None
        return out
