"""Frames inside a link record's plaintext: ``type u8 | length u24 | body``, repeated.

A record (see :mod:`hyphal.crypto.session`) carries one or more frames. Type 1 is CONTROL (routing
TLVs, :mod:`hyphal.wire.control`), type 2 is DATA (an end-to-end packet, :mod:`hyphal.wire.data`).
Unknown types are yielded by :func:`iter_frames` so the caller can count and skip them; that is how
new frame types can be added without breaking old nodes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from hyphal.wire.errors import DecodeError

FRAME_CONTROL = 1
FRAME_DATA = 2

FRAME_HEADER_SIZE = 4
MAX_FRAME_BODY = (1 << 24) - 1

_U32 = struct.Struct(">I")


def frame_header(frame_type: int, length: int) -> bytes:
    """The 4-byte header of a frame with a ``length``-byte body (for scatter/gather writers)."""
    if not 0 <= frame_type <= 0xFF:
        raise ValueError(f"frame type {frame_type} does not fit in a byte")
    if not 0 <= length <= MAX_FRAME_BODY:
        raise ValueError(f"frame body of {length} bytes exceeds {MAX_FRAME_BODY}")
    return ((frame_type << 24) | length).to_bytes(4, "big")


def encode_frame(frame_type: int, body: bytes | bytearray | memoryview) -> bytes:
    """One frame: header then body."""
    return frame_header(frame_type, len(body)) + body


def iter_frames(plaintext: bytes | bytearray | memoryview) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(type, body)`` for each frame of a record plaintext; bodies are views, not copies.

    Raises DecodeError on a truncated header or body (frames yielded before it were valid).
    """
    view = plaintext if isinstance(plaintext, memoryview) else memoryview(plaintext)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    pos = 0
    size = len(view)
    while pos < size:
        if size - pos < FRAME_HEADER_SIZE:
            raise DecodeError(f"truncated frame header: {size - pos} bytes at offset {pos}")
        (word,) = _U32.unpack_from(view, pos)
        length = word & 0xFFFFFF
        start = pos + FRAME_HEADER_SIZE
        end = start + length
        if end > size:
            raise DecodeError(
                f"truncated frame: type {word >> 24} claims {length} bytes, {size - start} remain"
            )
        yield word >> 24, view[start:end]
        pos = end
