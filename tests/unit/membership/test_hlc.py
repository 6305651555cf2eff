"""The hybrid logical clock only moves forward, and follows wall time."""

from hyphal.membership.hlc import COUNTER_BITS, HybridClock, wall_part


def test_versions_increase_even_when_the_wall_clock_stands_or_steps_back() -> None:
    clock = HybridClock()
    a = clock.next(1000.0)
    b = clock.next(1000.0)
    c = clock.next(999.0)
    assert a < b < c
    assert wall_part(a) == 1000.0
    assert clock.next(2000.0) == 2_000_000 << COUNTER_BITS


def test_observe_moves_past_a_version_seen_from_an_earlier_life() -> None:
    clock = HybridClock()
    seen = 5_000_000 << COUNTER_BITS
    clock.observe(seen)
    assert clock.next(1000.0) > seen
