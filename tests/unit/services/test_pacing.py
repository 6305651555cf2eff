"""Publishing pace: failures go out at once while a reserve lasts; recoveries wait for it."""

from __future__ import annotations

import pytest

from hyphal.services.pacing import RESERVE, PublishPacer


def test_urgent_changes_use_the_reserve_and_others_leave_it() -> None:
    p = PublishPacer(1 / 6, 10, 0.0, spent=1)
    sent = 0
    while p.ready(0.0, urgent=False):
        p.spend(0.0)
        sent += 1
    assert sent == 9 - RESERVE
    for _ in range(RESERVE):
        assert p.ready(0.0, urgent=True)
        p.spend(0.0)
    assert not p.ready(0.0, urgent=True)
    assert p.when(0.0, urgent=True) == pytest.approx(6.0)
    assert p.when(0.0, urgent=False) == pytest.approx(6.0 * (1 + RESERVE))


def test_tokens_refill_to_the_burst() -> None:
    p = PublishPacer(1 / 6, 10, 0.0)
    assert p.tokens(1e6) == 10
