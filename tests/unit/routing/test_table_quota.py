"""Issue 8 item 5a: a neighbour flooding prefixes evicts only its own routes."""

from __future__ import annotations

from dataclasses import replace

from test_routing_core import add_measured_neighbour
from test_routing_security import signed_update

from hyphal.routing import DEFAULT_PARAMS, Router
from hyphal.sim.routernet import make_router
from hyphal.wire.control import encode_payload

FLOODER, HONEST = 1, 2


def two_neighbour_router(max_routes: int) -> Router:
    router = make_router(0, 0.0, replace(DEFAULT_PARAMS, max_routes=max_routes))
    add_measured_neighbour(router, FLOODER)
    add_measured_neighbour(router, HONEST)
    return router


def test_flooding_neighbour_evicts_only_its_own_routes() -> None:
    router = two_neighbour_router(100)
    flood = [signed_update(index) for index in range(1, 101)]
    router.handle_control(FLOODER, encode_payload(flood), 1.0)
    assert router.route_count() == 100
    honest = signed_update(500)
    router.handle_control(HONEST, encode_payload([honest]), 1.1)
    assert router.next_hop(honest.prefix64) == HONEST
    assert router.route_count() == 100
    assert router.counters["routes_evicted"] == 1
    assert router.counters["updates_rejected_table_full"] == 0
    kept = {r.prefix64 for r in router.selected_routes() if r.next_hop == FLOODER}
    assert len(kept) == 99 and flood[-1].prefix64 not in kept  # the flooder's newest went


def test_neighbour_within_its_share_is_not_evicted() -> None:
    router = two_neighbour_router(4)
    router.handle_control(FLOODER, encode_payload([signed_update(i) for i in (1, 2)]), 1.0)
    router.handle_control(HONEST, encode_payload([signed_update(i) for i in (3, 4)]), 1.0)
    router.handle_control(FLOODER, encode_payload([signed_update(5)]), 1.1)
    assert router.counters["updates_rejected_table_full"] == 1
    assert router.counters["routes_evicted"] == 0
    assert {r.next_hop for r in router.selected_routes()} == {FLOODER, HONEST}
    assert router.route_count() == 4


def test_shared_prefix_is_never_evicted() -> None:
    router = two_neighbour_router(3)
    shared = [signed_update(i) for i in (1, 2, 3)]
    router.handle_control(FLOODER, encode_payload(shared), 1.0)
    router.handle_control(HONEST, encode_payload(shared), 1.0)
    router.handle_control(HONEST, encode_payload([signed_update(4)]), 1.1)
    assert router.counters["routes_evicted"] == 0
    assert router.counters["updates_rejected_table_full"] == 1
