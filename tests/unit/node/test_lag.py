"""The event-loop lag monitor: the recent worst, and the cumulative histogram a scrape reads."""

from __future__ import annotations

import asyncio
import time

from hyphal.node.lag import BUCKETS, LagMonitor


def test_histogram_counts_every_sample_cumulatively() -> None:
    lag = LagMonitor(lambda: 0.0)
    for sample in (0.0, 0.004, 0.3, 0.3, 7.0):
        lag.record(sample)
    buckets, total = lag.histogram()
    counts = dict(buckets)
    assert [bound for bound, _ in buckets] == [*map(str, BUCKETS), "+Inf"]
    assert counts["0.005"] == 2 and counts["0.25"] == 2 and counts["0.5"] == 4
    assert counts["5.0"] == 4 and counts["+Inf"] == 5
    assert abs(total - 7.604) < 1e-9
    assert lag.max_lag() == 7.0


def test_a_sample_on_a_bound_falls_in_that_bucket() -> None:
    lag = LagMonitor(lambda: 0.0)
    lag.record(0.25)
    assert dict(lag.histogram()[0])["0.25"] == 1


async def test_a_blocked_loop_shows_as_one_late_sample() -> None:
    loop = asyncio.get_running_loop()
    lag = LagMonitor(loop.time)
    lag.start(loop)
    try:
        await asyncio.sleep(0.25)
        # Block the loop for 0.3 s: the next tick fires about that late.
        time.sleep(0.3)  # noqa: ASYNC251 (blocking the loop is the point)
        await asyncio.sleep(0.15)
    finally:
        lag.close()
    counts = dict(lag.histogram()[0])
    assert counts["+Inf"] - counts["0.1"] >= 1
    assert lag.max_lag() >= 0.15
