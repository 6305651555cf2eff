"""The generic engine: one timer per core, lazy rescheduling, stalls, insertion order on ties."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from hyphal.sim.engine import Engine, TimerStall


class Ticker:
    """A toy sans-IO core: ticks every ``period`` and returns the tick time as its action."""

    def __init__(self, period: float, now: float = 0.0) -> None:
        self.period = period
        self.due = now + period

    def next_deadline(self) -> float:
        return self.due

    def on_timer(self, now: float) -> list[float]:
        if now < self.due:
            return []
        self.due += self.period
        return [now]


class Stuck:
    """A broken core whose deadline never moves past the present."""

    def next_deadline(self) -> float:
        return 0.0

    def on_timer(self, now: float) -> list[float]:
        return []


def test_a_core_is_driven_by_its_own_deadline() -> None:
    engine = Engine()
    ticks: list[float] = []
    engine.drive(ticks.extend, Ticker(0.5))
    engine.run_until(2.0)
    assert ticks == [0.5, 1.0, 1.5, 2.0]
    assert engine.now == 2.0 and engine.stats.timers == 4


def test_a_moved_deadline_leaves_the_old_timer_stale() -> None:
    engine = Engine()
    ticks: list[float] = []
    core = Ticker(1.0)
    slot = engine.drive(ticks.extend, core)
    engine.run_until(0.1)
    core.due = 0.3  # an input changed the core's deadline; the adapter feeds its actions
    slot.feed([])
    engine.run_until(1.05)
    assert ticks == [0.3]
    assert engine.stats.stale_timers == 1  # the timer armed for 1.0


def test_inputs_scheduled_by_an_adapter_reach_the_core_in_time_order() -> None:
    engine = Engine()
    order: list[str] = []
    engine.schedule(0.2, lambda: order.append("late"))
    engine.schedule(0.1, lambda: order.append("first"))
    engine.schedule(0.1, lambda: order.append("second"))  # a tie keeps insertion order
    engine.run_until(1.0)
    assert order == ["first", "second", "late"]


def test_a_stalled_core_is_nudged_and_counted() -> None:
    engine = Engine()
    engine.drive(_ignore, Stuck())
    engine.run_until(1e-5)
    assert engine.stats.timer_stalls >= 1
    assert engine.stats.timers < 20  # without the nudge this would spin at t=0 for ever


def test_a_strict_engine_raises_on_a_stalled_core() -> None:
    engine = Engine(strict=True)
    engine.drive(_ignore, Stuck())
    with pytest.raises(TimerStall):
        engine.run_until(1.0)


def test_a_core_replaced_by_none_stops_ticking() -> None:
    engine = Engine()
    ticks: list[float] = []
    slot = engine.drive(ticks.extend, Ticker(0.5))
    engine.run_until(0.6)
    slot.replace(None)
    engine.run_until(3.0)
    assert ticks == [0.5]


def _ignore(actions: Iterable[float]) -> None:
    for _ in actions:
        pass
