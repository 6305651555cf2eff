"""The BLAKE3-256 message digest INIT carries (multithreaded for large messages)."""

from __future__ import annotations

from blake3 import blake3

#: Messages at least this large are hashed with BLAKE3's multithreaded mode.
PARALLEL_HASH_MIN = 1 << 20


def message_digest(data: bytes) -> bytes:
    """BLAKE3-256 of a whole message, as INIT carries it."""
    if len(data) >= PARALLEL_HASH_MIN:
        return blake3(data, max_threads=blake3.AUTO).digest()
    return blake3(data).digest()
