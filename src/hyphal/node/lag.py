"""Event-loop lag: how late a periodic timer fires, and the worst lag over a recent window."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

INTERVAL = 0.1
WINDOW = 60.0  # seconds of samples the maximum is taken over


class LagMonitor:
    """Samples the loop's lag every :data:`INTERVAL` s; :meth:`max_lag` is the recent worst."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._samples: deque[float] = deque(maxlen=int(WINDOW / INTERVAL))
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._arm(loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self._due = self._clock() + INTERVAL
        self._handle = loop.call_later(INTERVAL, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._samples.append(max(0.0, self._clock() - self._due))
        self._arm(loop)

    def max_lag(self) -> float:
        """The largest lag (seconds) over the last :data:`WINDOW` s of samples."""
        return max(self._samples, default=0.0)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
