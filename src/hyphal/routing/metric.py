"""Metric arithmetic (u16, saturating, 0xFFFF = infinite) and u16 seqno wraparound comparison."""

from __future__ import annotations

INFINITY = 0xFFFF
_MAX_FINITE = INFINITY - 1


def metric_add(a: int, b: int) -> int:
    """a + b, infinite if either is infinite, otherwise saturating just below infinity."""
    if a >= INFINITY or b >= INFINITY:
        return INFINITY
    total = a + b
    return total if total < _MAX_FINITE else _MAX_FINITE


def seqno_newer(a: int, b: int) -> bool:
    """True if seqno ``a`` is strictly newer than ``b`` modulo 2**16 (RFC 8966 3.2.1)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


def seqno_newer_or_equal(a: int, b: int) -> bool:
    return a == b or seqno_newer(a, b)
