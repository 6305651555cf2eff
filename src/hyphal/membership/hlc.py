"""A hybrid logical clock for record versions: milliseconds of wall time << 16 | a counter.

Versions only order the records of one origin, so the clock needs two properties: every new
version is larger than every earlier one the origin made (or saw of itself on the network), and
versions track wall time so a node that restarted without state still moves forward. ``observe``
is the HLC receive rule: a version of our own record seen from the network pushes the clock past
it (after a clock step backwards, or a restart on a machine whose clock is behind).
"""

from __future__ import annotations

COUNTER_BITS = 16
MAX_VERSION = (1 << 64) - 1


def wall_part(version: int) -> float:
    """The wall-clock seconds a version was made at."""
    return (version >> COUNTER_BITS) / 1000.0


class HybridClock:
    """Issues strictly increasing 64-bit versions from an injected wall clock."""

    __slots__ = ("_last",)

    def __init__(self, last: int = 0) -> None:
        self._last = last

    @property
    def last(self) -> int:
        return self._last

    def next(self, wall: float) -> int:
        """A version larger than every earlier one; ``wall`` is Unix seconds."""
        physical = max(0, int(wall * 1000)) << COUNTER_BITS
        version = max(physical, self._last + 1)
        if version > MAX_VERSION:
            raise OverflowError("hybrid clock exhausted")
        self._last = version
        return version

    def observe(self, version: int) -> None:
        """Never issue ``version`` or anything below it again."""
        self._last = max(self._last, min(version, MAX_VERSION - 1))
