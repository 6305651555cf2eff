"""The status's memory of recent events: the route-event ring keeps losses and failovers (not
the routine "reachable"), bounded; link uptimes follow links up and down."""

from __future__ import annotations

from hyphal.node.events import LinkUptimes, RecentRouteEvents
from hyphal.node.routelog import RouteEvent


def event(kind: str, at: float) -> RouteEvent:
    return RouteEvent(kind, "ab" * 32, "400::1", "old", "new", 10, "why", at)


def test_ring_keeps_losses_and_failovers_bounded() -> None:
    ring = RecentRouteEvents(size=3)
    for i, kind in enumerate(["reachable", "lost", "failover", "failover", "lost", "reachable"]):
        ring(event(kind, float(i)))
    assert [(e.kind, e.at) for e in ring.snapshot()] == [
        ("failover", 2.0),
        ("failover", 3.0),
        ("lost", 4.0),
    ]
    assert ring.total == 4


def test_uptimes_follow_links() -> None:
    uptimes = LinkUptimes()
    uptimes.up(1, 100.0)
    uptimes.up(2, 200.0)
    uptimes.down(1)
    assert uptimes.since(1) is None and uptimes.since(2) == 200.0
