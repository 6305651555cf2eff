"""Simulated links: FIFO per direction, serialisation delay, latency, loss modes."""

from __future__ import annotations

import random

import pytest

from hyphal.sim.links import FRAMING_OVERHEAD, MIN_RTO_S, SimLink


def test_serialisation_and_fifo() -> None:
    link = SimLink(0, 0, 1, latency=0.010, bandwidth_bps=8_000.0)  # 1000 bytes/s
    rng = random.Random(1)
    first = link.transmit(0, 1000 - FRAMING_OVERHEAD, 0.0, rng)
    second = link.transmit(0, 1000 - FRAMING_OVERHEAD, 0.0, rng)
    assert first == pytest.approx(1.010)
    assert second == pytest.approx(2.010)  # waits for the first to leave the queue
    other_way = link.transmit(1, 1000 - FRAMING_OVERHEAD, 0.0, rng)
    assert other_way == pytest.approx(1.010)  # directions are independent


def test_jitter_never_reorders() -> None:
    link = SimLink(0, 0, 1, latency=0.010, jitter=0.050)
    rng = random.Random(2)
    arrivals = [link.transmit(0, 100, i * 0.001, rng) for i in range(200)]
    assert all(a is not None for a in arrivals)
    assert arrivals == sorted(arrivals)  # type: ignore[type-var]


def test_loss_modes() -> None:
    rng = random.Random(3)
    drop = SimLink(0, 0, 1, latency=0.010, loss=1.0, loss_mode="drop")
    assert drop.transmit(0, 100, 0.0, rng) is None
    tcp = SimLink(0, 0, 1, latency=0.010, loss=1.0)
    arrival = tcp.transmit(0, 100, 0.0, rng)
    assert arrival is not None and arrival >= 0.010 + MIN_RTO_S
