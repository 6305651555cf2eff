"""Health of local instances: HAProxy-style rise/fall counters, as a sans-IO core.

Each instance starts *unhealthy* (it has not passed yet). A check is due every ``interval``;
the adapter runs it and reports the outcome with :meth:`HealthCore.report`. ``rise``
consecutive passes make an unhealthy instance healthy, ``fall`` consecutive failures make a
healthy one unhealthy; a result that goes against the current state only moves its counter, so a
flapping backend (pass, fail, pass, ...) never changes the published state while rise and fall
are above 1. Time comes in as ``now``; the core never reads a clock.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class HealthState:
    rise: int
    fall: int
    interval: float
    healthy: bool = False
    passes: int = 0
    """Consecutive passes while unhealthy."""
    failures: int = 0
    """Consecutive failures while healthy."""
    due: float = 0.0
    running: bool = False
    checks: int = 0
    last_ok: bool | None = None
    last_detail: str = ""
    changed_at: float = 0.0


class HealthCore(Generic[K]):
    """Rise/fall state for every local instance, keyed by ``K``."""

    def __init__(self) -> None:
        self._states: dict[K, HealthState] = {}

    def add(self, key: K, rise: int, fall: int, interval: float, now: float) -> None:
        """Track ``key`` (unhealthy until it passes ``rise`` times); its first check is due now."""
        if rise < 1 or fall < 1 or interval <= 0:
            raise ValueError("rise and fall must be >= 1 and interval > 0")
        self._states[key] = HealthState(rise, fall, interval, due=now, changed_at=now)

    def remove(self, key: K) -> None:
        self._states.pop(key, None)

    def state(self, key: K) -> HealthState | None:
        return self._states.get(key)

    def healthy(self, key: K) -> bool:
        s = self._states.get(key)
        return s is not None and s.healthy

    def due(self, now: float) -> list[K]:
        """Keys whose check should start now (each is marked running until reported)."""
        out = []
        for key, s in self._states.items():
            if not s.running and s.due <= now:
                s.running = True
                out.append(key)
        return out

    def next_deadline(self) -> float | None:
        """When the next check falls due (None: nothing tracked or everything is running)."""
        waiting = [s.due for s in self._states.values() if not s.running]
        return min(waiting) if waiting else None

    def report(self, key: K, ok: bool, now: float, detail: str = "") -> bool:
        """One check's outcome; True if the instance changed between healthy and unhealthy."""
        s = self._states.get(key)
        if s is None:
            return False  # removed while its check ran
        s.running = False
        s.due = now + s.interval
        s.checks += 1
        s.last_ok = ok
        s.last_detail = detail
        if s.healthy:
            if ok:
                s.failures = 0
                return False
            s.failures += 1
            if s.failures >= s.fall:
                s.healthy, s.failures, s.changed_at = False, 0, now
                return True
            return False
        if not ok:
            s.passes = 0
            return False
        s.passes += 1
        if s.passes >= s.rise:
            s.healthy, s.passes, s.changed_at = True, 0, now
            return True
        return False

    def force(self, key: K, healthy: bool, now: float) -> bool:
        """Set the state outright (a ``none`` check: healthy at once); True if it changed."""
        s = self._states.get(key)
        if s is None or s.healthy == healthy:
            return False
        s.healthy, s.passes, s.failures, s.changed_at = healthy, 0, 0, now
        return True
