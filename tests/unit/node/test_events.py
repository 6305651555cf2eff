"""node/events.py: failovers are derived from the router's forwarding table, named by the hops'
labels (kept until the link's loss has been processed), and kept in a bounded ring."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from hyphal.node.events import RecentFailovers, RouteChangeWatch, hop_text

P1 = bytes.fromhex("0500000000000001")
P2 = bytes.fromhex("0500000000000002")
K1 = b"\x01" * 32
K2 = b"\x02" * 32


class TableRouter:
    """The part of the router the watch reads, as plain state the test changes by hand (what
    the real router does to these fields is covered by tests/integration/test_failover_ring.py)."""

    def __init__(self) -> None:
        self.counters = {"route_switches": 0, "routes_lost": 0}
        self.fib: dict[bytes, int] = {}
        self.keys: dict[bytes, bytes] = {}

    def forwarding_table(self) -> Mapping[bytes, int]:
        return MappingProxyType(self.fib)

    def route_public_key(self, prefix64: bytes) -> bytes | None:
        return self.keys.get(prefix64) if prefix64 in self.fib else None


def make() -> tuple[TableRouter, RouteChangeWatch, list[float]]:
    router = TableRouter()
    clock = [1000.0]
    watch = RouteChangeWatch(router, lambda: clock[0], size=4)
    watch.link_up(1, b"\xaa" * 32, "192.0.2.1:9651")
    watch.link_up(2, b"\xbb" * 32, "192.0.2.2:9651")
    return router, watch, clock


def test_a_switch_is_recorded_with_both_hops_named() -> None:
    router, watch, clock = make()
    router.fib[P1], router.keys[P1] = 1, K1
    watch.check()  # a new route is not a failover
    assert watch.failovers.snapshot() == []
    router.fib[P1] = 2
    router.counters["route_switches"] += 1
    clock[0] = 1005.0
    watch.check()
    [event] = watch.failovers.snapshot()
    assert (event.prefix64, event.destination_key, event.at) == (P1, K1, 1005.0)
    assert event.old is not None and event.old.remote_address == "192.0.2.1:9651"
    assert event.new is not None and event.new.public_key == b"\xbb" * 32
    assert event.reason == "a better route"
    assert hop_text(event.old) == "aaaaaaaaaaaaaaaa at 192.0.2.1:9651"


def test_a_link_loss_names_the_gone_hop_and_the_reason() -> None:
    router, watch, _ = make()
    router.fib.update({P1: 1, P2: 1})
    router.keys.update({P1: K1, P2: K2})
    watch.check()
    # The router processed link 1's loss: P1 moved to link 2, P2 has no route left.
    router.fib[P1] = 2
    del router.fib[P2]
    router.counters["route_switches"] += 1
    router.counters["routes_lost"] += 1
    watch.link_down(1, "connection closed by peer")
    watch.forget(1)
    events = {e.prefix64: e for e in watch.failovers.snapshot()}
    assert events[P1].old is not None and events[P1].old.link_id == 1
    assert events[P1].reason == "link to the old next hop closed: connection closed by peer"
    assert events[P2].new is None and events[P2].destination_key == K2
    assert events[P2].reason.startswith("no route left")
    assert watch.up_since(1) is None and watch.up_since(2) == 1000.0


def test_nothing_is_recorded_while_the_counters_stand_still() -> None:
    router, watch, _ = make()
    router.fib[P1] = 1
    watch.check()
    router.fib[P1] = 2  # changed without the router counting a switch: not a selection change
    watch.check()
    assert watch.failovers.snapshot() == []


def test_the_ring_is_bounded_and_counts_everything() -> None:
    ring = RecentFailovers(size=3)
    router, watch, _ = make()
    router.fib[P1] = 1
    watch.check()
    for i in range(10):
        router.fib[P1] = 2 if i % 2 == 0 else 1
        router.counters["route_switches"] += 1
        watch.check()
    assert len(watch.failovers.snapshot()) == 4 and watch.failovers.total == 10
    assert ring.snapshot() == [] and ring.total == 0
