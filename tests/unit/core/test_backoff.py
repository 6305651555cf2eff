"""Reconnect backoff grows exponentially with jitter, is capped, and resets."""

from __future__ import annotations

import random

from hyphal.links.backoff import Backoff


def test_backoff_grows_caps_and_resets() -> None:
    backoff = Backoff(base=0.5, cap=8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(12)]
    assert all(0.25 <= d <= 8.0 for d in delays)
    assert max(delays[6:]) > 2.0  # grew past the base
    ceilings = [min(8.0, 0.5 * 2**i) for i in range(12)]
    assert all(d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 0.5
