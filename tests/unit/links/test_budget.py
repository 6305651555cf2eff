"""The sans-IO handshake budget: per-source and global token buckets, bounded source table."""

from __future__ import annotations

from hyphal.links.budget import HandshakeBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_per_source_burst_then_rate() -> None:
    clock = Clock()
    budget = HandshakeBudget(clock, per_source_rate=2.0, per_source_burst=3.0)
    assert [budget.admit("a") for _ in range(3)] == [None, None, None]
    assert budget.admit("a") is not None
    assert budget.admit("b") is None  # another source has its own bucket
    clock.now += 0.5  # one token back at 2/s
    assert budget.admit("a") is None
    assert budget.admit("a") is not None


def test_global_budget_caps_many_sources() -> None:
    clock = Clock()
    budget = HandshakeBudget(clock, global_rate=1.0, global_burst=5.0)
    results = [budget.admit(f"10.0.0.{i}") for i in range(20)]
    assert results[:5] == [None] * 5
    assert all(r is not None and "global" in r for r in results[5:])


def test_source_table_is_bounded() -> None:
    clock = Clock()
    budget = HandshakeBudget(clock, per_source_burst=1.0, max_sources=10, global_burst=1e9)
    assert budget.admit("first") is None
    assert budget.admit("first") is not None
    for i in range(10):
        budget.admit(f"s{i}")
    assert len(budget._sources) == 10
    assert budget.admit("first") is None  # forgotten, so it starts with a fresh bucket
