"""Sliding anti-replay window over 64-bit counters, after RFC 6479.

The bitmap is a ring of 64-bit blocks; moving the window forward clears whole blocks, so both the
check and the update are O(1) however far the counter jumps. The window accepts any counter not yet
seen that is within :data:`WINDOW_SIZE` of the highest counter accepted so far, so reordering within
that distance is harmless; anything older is rejected as a possible replay.

Check first (:meth:`ReplayWindow.check`), authenticate the packet, then :meth:`ReplayWindow.update`:
only authenticated counters may move the window, or a forger could push it forward.
"""

from __future__ import annotations

BLOCK_BITS = 64
BLOCKS = 64
WINDOW_SIZE = (BLOCKS - 1) * BLOCK_BITS  # 4032 packets
_BLOCK_MASK = BLOCKS - 1
_BIT_MASK = BLOCK_BITS - 1


class ReplayWindow:
    """Replay state of one (sender, session)."""

    __slots__ = ("_bitmap", "_top")

    def __init__(self) -> None:
        self._bitmap = [0] * BLOCKS
        self._top = 0  # highest counter accepted; counter 0 starts unseen

    @property
    def top(self) -> int:
        return self._top

    def check(self, counter: int) -> bool:
        """Whether ``counter`` would be accepted (no state change)."""
        if counter > self._top:
            return True
        if counter + WINDOW_SIZE <= self._top:
            return False
        block = (counter >> 6) & _BLOCK_MASK
        return not (self._bitmap[block] >> (counter & _BIT_MASK)) & 1

    def update(self, counter: int) -> bool:
        """Mark ``counter`` seen; False (and no change) if it is a replay or too old."""
        if not self.check(counter):
            return False
        bitmap = self._bitmap
        if counter > self._top:
            current = self._top >> 6
            target = counter >> 6
            for i in range(1, min(target - current, BLOCKS) + 1):
                bitmap[(current + i) & _BLOCK_MASK] = 0
            self._top = counter
        block = (counter >> 6) & _BLOCK_MASK
        bitmap[block] |= 1 << (counter & _BIT_MASK)
        return True
