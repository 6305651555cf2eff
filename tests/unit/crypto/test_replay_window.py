"""RFC 6479-style replay window."""

from __future__ import annotations

import random

from hyphal.crypto.replay import WINDOW_SIZE, ReplayWindow


def test_in_order_and_duplicates() -> None:
    w = ReplayWindow()
    for i in range(5000):
        assert w.update(i)
        assert not w.update(i)


def test_reordering_within_window() -> None:
    w = ReplayWindow()
    order = list(range(3000))
    random.Random(1).shuffle(order)
    # bounded displacement: shuffle within blocks of 1000 so everything stays inside the window
    order = sorted(range(3000), key=lambda i: (i // 1000, random.Random(i).random()))
    for i in order:
        assert w.update(i), i
    for i in order:
        assert not w.update(i)


def test_too_old_rejected_and_big_jump() -> None:
    w = ReplayWindow()
    assert w.update(0)
    assert w.update(10_000)
    assert not w.check(0)
    assert not w.update(10_000 - WINDOW_SIZE)
    assert w.update(10_000 - WINDOW_SIZE + 1)
    assert w.update(2**64 - 1)
    assert not w.update(2**64 - 1)
    assert not w.update(10_001)


def test_against_reference_model() -> None:
    rng = random.Random(7)
    w = ReplayWindow()
    seen: set[int] = set()
    top = 0
    for _ in range(20000):
        c = max(0, top + rng.randint(-5000, 300))
        expected = c not in seen and (c > top or c + WINDOW_SIZE > top)
        assert w.update(c) == expected, c
        if expected:
            seen.add(c)
            top = max(top, c)
