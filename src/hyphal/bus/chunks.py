"""Chunk arithmetic and the receiver's reassembly buffer.

The sender splits a message into ``CHUNK_SIZE`` pieces. 60 KiB is chosen because the data path's
cost is per packet, hardly per byte (each packet is one AES-GCM call, a frame, a link write, a
relay hop and a bus ACK, all interpreted Python): measured on a 100 MB transfer, 60 KiB chunks
need a quarter of the packets and ACKs of 16 KiB ones. It is also the largest size every receiver
accepts (``MAX_CHUNK_SIZE``, checked at admission since the first version), so new senders
interoperate with old receivers, and a chunk plus the bus header (<= ~320 bytes for an INIT with
a full topic) plus the end-to-end envelope (66-byte header, 1 kind byte, 16-byte tag) is
61,823 bytes at most: one data packet, inside the 65,535 bytes the data path (and a 64 KiB TUN
packet) carries. The cost: one lost chunk resends 60 KiB, and a chunk occupies a shared
1 Mbit/s link for ~0.5 s (TCP on the same link sends 64 KiB TUN packets, so no worse).

``Reassembly`` keeps each chunk that arrives (nothing is allocated for chunks that have not: an
INIT claiming 128 MiB costs the receiver one chunk and a bitmap, not 128 MiB), tracks arrival in
a bitmap, and keeps a cumulative pointer; the message is joined once, on completion, so
reassembly is O(n) in the message size with no quadratic copying. Selective-ack ranges are
found with ``bytearray.find`` over the bitmap (C speed), and not at all while nothing above the
cumulative pointer has arrived (the common, in-order case).
"""

from __future__ import annotations

CHUNK_SIZE = 60 * 1024
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

    __slots__ = (
        "_chunks",
        "_have",
        "chunk_size",
        "count",
        "cumulative",
        "received",
        "stored",
        "total",
    )

    def __init__(self, total: int, chunk_size: int) -> None:
        self.total = total
        self.chunk_size = chunk_size
        self.count = chunk_count(total, chunk_size)
        self._have = bytearray(self.count)
        self._chunks: dict[int, bytes] = {}
        self.stored = 0  # payload bytes held
        self.received = 0
        self.cumulative = 0  # every chunk below this index has arrived

    @property
    def complete(self) -> bool:
        return self.received == self.count

    @property
    def allocated(self) -> int:
        return self.stored + len(self._have)

    def has(self, index: int) -> bool:
        return 0 <= index < self.count and bool(self._have[index])

    def valid(self, index: int, length: int) -> bool:
        """Whether a chunk with this index and data length fits the announced message."""
        if not 0 <= index < self.count:
            return False
        start, end = chunk_bounds(index, self.total, self.chunk_size)
        return length == end - start

    def add(self, index: int, data: bytes | memoryview) -> bool:
        """Store a chunk; False for a duplicate. The caller checked ``valid`` first."""
        if self._have[index]:
            return False
        self._chunks[index] = bytes(data)
        self.stored += len(data)
        self._have[index] = 1
        self.received += 1
        while self.cumulative < self.count and self._have[self.cumulative]:
            self.cumulative += 1
        return True

    def sack_ranges(self, window: int, limit: int) -> tuple[tuple[int, int], ...]:
        """Runs of received chunks above the cumulative pointer within ``window`` chunks."""
        if self.received == self.cumulative:
            return ()  # nothing above the cumulative pointer (in-order arrival)
        ranges: list[tuple[int, int]] = []
        have = self._have
        end = min(self.count, self.cumulative + window)
        i = self.cumulative
        while len(ranges) < limit:
            start = have.find(1, i, end)
            if start < 0:
                break
            stop = have.find(0, start, end)
            if stop < 0:
                stop = end
            ranges.append((start, stop))
            i = stop
        return tuple(ranges)

    def data(self) -> bytes:
        """The whole message (one copy); only meaningful when complete."""
        chunks = self._chunks
        out = b"".join(chunks[i] for i in range(self.count)) if self.complete else b""
        self._chunks = {}
        self.stored = 0
        return out
