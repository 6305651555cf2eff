"""Rise/fall counters: new instances start unhealthy, flapping does not flap the state."""

from __future__ import annotations

import pytest

from hyphal.services.health import HealthCore


def core(rise: int = 2, fall: int = 3) -> HealthCore[str]:
    h: HealthCore[str] = HealthCore()
    h.add("x", rise, fall, 1.0, 0.0)
    return h


def feed(h: HealthCore[str], results: str, start: float = 0.0) -> list[bool]:
    """Report each result ('+' pass, '-' fail); the state after each."""
    states = []
    for n, ch in enumerate(results):
        assert h.due(start + n) == ["x"]
        h.report("x", ch == "+", start + n)
        states.append(h.healthy("x"))
    return states


def test_new_instance_is_unhealthy_until_rise_passes() -> None:
    h = core(rise=3)
    assert not h.healthy("x")
    assert feed(h, "+++") == [False, False, True]


def test_a_failure_resets_the_rise_count() -> None:
    h = core(rise=2)
    assert feed(h, "+-+-+-++") == [False] * 7 + [True]


def test_fall_needs_consecutive_failures() -> None:
    h = core(rise=1, fall=3)
    assert feed(h, "+--+--+---") == [True] * 9 + [False]


def test_flapping_never_changes_the_state() -> None:
    h = core(rise=2, fall=2)
    feed(h, "++")
    assert all(feed(h, "-+" * 50, start=2.0))
    h2 = core(rise=2, fall=2)
    assert not any(feed(h2, "+-" * 50))


def test_due_and_deadline_follow_the_interval() -> None:
    h = core()
    assert h.next_deadline() == 0.0
    assert h.due(0.0) == ["x"]
    assert h.due(0.5) == [] and h.next_deadline() is None  # running
    assert h.report("x", True, 0.2) is False
    assert h.next_deadline() == pytest.approx(1.2)
    assert h.due(1.0) == [] and h.due(1.2) == ["x"]


def test_a_result_for_a_removed_instance_is_ignored() -> None:
    h = core()
    h.due(0.0)
    h.remove("x")
    assert h.report("x", True, 1.0) is False and h.state("x") is None


def test_force_sets_healthy_at_once() -> None:
    h = core()
    assert h.force("x", True, 0.0) and h.healthy("x") and not h.force("x", True, 0.0)


def test_bad_counters_are_refused() -> None:
    with pytest.raises(ValueError):
        HealthCore[str]().add("x", 0, 1, 1.0, 0.0)
