"""One asyncio driver for every sans-IO core (router, message bus, and the cores still to come).

A core is anything with ``on_timer(now) -> actions`` and ``next_deadline() -> float``. The driver
is the only place that turns a core's deadline into an event-loop timer, in the way aioquic's
``QuicConnectionProtocol.transmit()`` does: every batch of actions the core returns goes through
:meth:`CoreDriver.feed`, which applies them and then re-arms *one* ``call_at`` for the core's
next deadline. Inputs from the network or the API are handed to the core by its owner, and the
actions they return are fed here too, so a deadline that moved earlier is never missed.

An exception while applying actions or running the core's timer is logged with its traceback and
the timer is re-armed: one bad input must never stop a core's clock.

A timer that fires late (the loop was stalled) does not run the core at once: it waits for one
I/O poll first, so inputs that queued up during the stall (a neighbour's hellos sitting in a
socket buffer) reach the core before it judges timeouts. uvloop runs due timers before it polls
sockets; two ``call_soon`` hops put the run after the next poll under uvloop and asyncio alike.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

log = logging.getLogger("hyphal.node.driver")

_RETRY_AFTER = 0.1
OVERDUE = 0.05  # a timer this late (seconds) waits for one I/O poll before running the core

A = TypeVar("A")
A_co = TypeVar("A_co", covariant=True)


class TimedCore(Protocol[A_co]):
    """The part of a sans-IO core the driver needs."""

    def on_timer(self, now: float) -> Sequence[A_co]: ...

    def next_deadline(self) -> float: ...


class CoreDriver(Generic[A]):
    """Keeps one loop timer armed at ``core.next_deadline()`` and applies the core's actions."""

    def __init__(
        self,
        name: str,
        core: TimedCore[A],
        apply: Callable[[Sequence[A]], None],
        clock: Callable[[], float],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.name = name
        self._core = core
        self._apply = apply
        self._clock = clock
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._closed = False
        self._not_before = -math.inf  # after a failure, wait a moment rather than spin
        self._deferred = False  # a late run waits for an I/O poll; re-arming waits for it too
        self.deferred_runs = 0
        self.timer_runs = 0
        self.failures = 0

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind to ``loop`` (default: the running loop) and arm the first timer."""
        self._loop = loop or self._loop or asyncio.get_running_loop()
        self._closed = False
        self.rearm()

    def feed(self, actions: Sequence[A]) -> None:
        """Apply actions the core returned for an input, then re-arm the timer."""
        if actions:
            try:
                self._apply(actions)
            except Exception:
                self.failures += 1
                log.exception("%s: applying actions failed", self.name)
        self.rearm()

    def rearm(self) -> None:
        """Arm the timer at the core's next deadline unless an earlier one is already armed."""
        if self._closed or self._loop is None or self._deferred:
            return
        deadline = max(self._core.next_deadline(), self._not_before)
        if self._timer is not None:
            if deadline >= self._timer_at:
                return
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if math.isinf(deadline):
            return
        delay = max(0.0, deadline - self._clock())
        self._timer = self._loop.call_later(delay, self._fire)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = math.inf

    def _fire(self) -> None:
        self._timer = None
        deadline, self._timer_at = self._timer_at, math.inf
        loop = self._loop
        if loop is not None and self._clock() - deadline > OVERDUE:
            self._deferred = True
            self.deferred_runs += 1
            loop.call_soon(loop.call_soon, self._run_deferred)
            return
        self._run()

    def _run_deferred(self) -> None:
        self._deferred = False
        if not self._closed:
            self._run()

    def _run(self) -> None:
        self.timer_runs += 1
        try:
            actions = self._core.on_timer(self._clock())
        except Exception:
            self.failures += 1
            log.exception("%s: timer failed; retrying in %.1f s", self.name, _RETRY_AFTER)
            self._not_before = self._clock() + _RETRY_AFTER
            actions = []
        self.feed(actions)
