"""Ordering: nearest first; weighted shuffling only among near-equal instances."""

from __future__ import annotations

import random
from collections import Counter
from ipaddress import IPv6Address

from hyphal.services.directory import Instance
from hyphal.services.select import near_equal, order


def inst(n: int, metric: int, weight: int = 100) -> Instance:
    return Instance("web", bytes([n]) * 32, IPv6Address(f"400::{n}"), 80, "tcp", weight, metric)


def test_nearest_first_when_distances_differ() -> None:
    rng = random.Random(1)
    for _ in range(50):
        got = order([inst(3, 30), inst(1, 10), inst(2, 20)], rng)
        assert [i.metric for i in got] == [10, 20, 30]


def test_near_equal_is_under_half_a_hop_or_an_eighth() -> None:
    assert near_equal(10, 14) and not near_equal(10, 15) and not near_equal(10, 20)
    assert near_equal(400, 449) and not near_equal(400, 450)


def test_near_equal_ones_are_shuffled_by_weight() -> None:
    rng = random.Random(7)
    firsts = Counter(
        order([inst(1, 100, 100), inst(2, 102, 200), inst(3, 300)], rng)[0].public_key[0]
        for _ in range(3000)
    )
    assert set(firsts) == {1, 2}
    assert 1.6 < firsts[2] / firsts[1] < 2.5  # about twice as often
    assert all(order([inst(1, 100), inst(3, 300)], rng)[-1].metric == 300 for _ in range(20))


def test_empty() -> None:
    assert order([], random.Random()) == []
