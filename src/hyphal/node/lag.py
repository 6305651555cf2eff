"""Event-loop lag: how late a periodic timer fires, the worst lag over a recent window, and a
cumulative histogram of every sample (so a scrape can tell what happened between two scrapes)."""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import deque
from collections.abc import Callable

INTERVAL = 0.1
WINDOW = 60.0  # seconds of samples the maximum is taken over
# Upper bounds (seconds) of the histogram's buckets; a last, unbounded bucket follows.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LagMonitor:
    """Samples the loop's lag every :data:`INTERVAL` s; :meth:`max_lag` is the recent worst,
    :meth:`histogram` counts every sample since the start by :data:`BUCKETS`."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._samples: deque[float] = deque(maxlen=int(WINDOW / INTERVAL))
        self._counts = [0] * (len(BUCKETS) + 1)
        self._sum = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._arm(loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self._due = self._clock() + INTERVAL
        self._handle = loop.call_later(INTERVAL, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.record(max(0.0, self._clock() - self._due))
        self._arm(loop)

    def record(self, lag: float) -> None:
        """One sample (seconds late); the timer calls this, tests may too."""
        self._samples.append(lag)
        self._counts[bisect_left(BUCKETS, lag)] += 1
        self._sum += lag

    def max_lag(self) -> float:
        """The largest lag (seconds) over the last :data:`WINDOW` s of samples."""
        return max(self._samples, default=0.0)

    def histogram(self) -> tuple[list[tuple[str, int]], float]:
        """Cumulative ``(upper bound, count)`` pairs ending with ``+Inf``, and the sum of lags."""
        cumulative: list[tuple[str, int]] = []
        total = 0
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self._counts, strict=True):
            total += count
            cumulative.append((bound, total))
        return cumulative, self._sum

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
