"""Small pieces of the router: metric arithmetic, seqnos, feasibility, selection details."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TypeVar

import pytest
from test_routing_security import PEER, deliver, signed_update, usable_router

from hyphal.routing import DEFAULT_PARAMS, INFINITY, Router, RoutingParams, SendControl
from hyphal.routing.metric import metric_add, seqno_newer
from hyphal.routing.source import SourceTable
from hyphal.sim.routernet import RouterNet, make_router
from hyphal.wire.control import IHU, Hello, SeqnoRequest, Update, decode_payload, encode_payload

T = TypeVar("T")

MS = 0.001


def test_metric_add_saturates() -> None:
    assert metric_add(10, 20) == 30
    assert metric_add(INFINITY, 1) == INFINITY
    assert metric_add(1, INFINITY) == INFINITY
    assert metric_add(0xFFF0, 0x100) == INFINITY - 1


def test_seqno_wraparound() -> None:
    assert seqno_newer(1, 0)
    assert seqno_newer(0, 0xFFFF)
    assert not seqno_newer(0xFFFF, 0)
    assert not seqno_newer(5, 5)
    assert seqno_newer(0x7FFF, 0)
    assert not seqno_newer(0x8000, 0)


def test_feasibility_condition() -> None:
    table = SourceTable(10, 2)
    p, rid = b"\x04" * 8, b"r" * 40
    assert table.feasible(p, rid, 3, 100)  # no source yet
    table.advertised(p, rid, 3, 100, expires=10.0)
    assert table.feasible(p, rid, 3, 99)
    assert not table.feasible(p, rid, 3, 100)
    assert not table.feasible(p, rid, 2, 1)
    assert table.feasible(p, rid, 4, 5000)
    assert table.feasible(p, rid, 3, INFINITY)  # retractions always feasible
    table.advertised(p, rid, 3, 150, expires=10.0)  # never raises the distance
    assert not table.feasible(p, rid, 3, 120)
    assert table.sweep(11.0) == 1
    assert table.feasible(p, rid, 3, 120)


def test_params_validate() -> None:
    with pytest.raises(ValueError):
        RoutingParams(dead_interval=0.1, hello_interval=0.25)
    with pytest.raises(ValueError):
        RoutingParams(cost_floor=0)
    assert DEFAULT_PARAMS.hello_interval == 0.25 and DEFAULT_PARAMS.dead_interval == 1.0


def test_router_id_is_key_plus_random_suffix() -> None:
    first = make_router(0, seed=1)
    second = make_router(0, seed=2)
    assert len(first.router_id) == 40
    assert first.router_id[:32] == first.public_key
    assert first.router_id != second.router_id
    assert first.own_prefix64 == second.own_prefix64


def test_hello_interval_and_next_deadline() -> None:
    router = make_router(0)
    actions = router.neighbour_up(PEER, 0.0)
    assert any(
        isinstance(t, Hello)
        for a in actions
        if isinstance(a, SendControl)
        for t in decode_payload(a.payload)
    )
    deadline = router.next_deadline()
    assert 0.25 * (1 - DEFAULT_PARAMS.hello_jitter) <= deadline <= 0.25
    actions = router.on_timer(deadline)
    assert any(
        isinstance(t, Hello)
        for a in actions
        if isinstance(a, SendControl)
        for t in decode_payload(a.payload)
    )


def add_measured_neighbour(router: Router, peer: int) -> None:
    """Bring ``peer`` up and answer its first hello, so routes through it are usable."""
    router.neighbour_up(peer, 0.0)
    hello = next(
        t
        for a in router.on_timer(0.25)
        if isinstance(a, SendControl) and a.peer == peer
        for t in decode_payload(a.payload)
        if isinstance(t, Hello)
    )
    router.handle_control(peer, encode_payload([IHU(hello.seqno, 25, hello.timestamp)]), 0.252)


def test_hysteresis_keeps_route_against_marginal_improvement() -> None:
    router = usable_router()
    add_measured_neighbour(router, PEER + 1)
    update = signed_update(1, metric=300)
    deliver(router, update)
    assert router.next_hop(update.prefix64) == PEER
    # 1 % better via the other neighbour: not worth switching
    router.handle_control(PEER + 1, encode_payload([replace(update, metric=297)]), 0.26)
    assert router.next_hop(update.prefix64) == PEER
    # 20 % better: switch
    router.handle_control(PEER + 1, encode_payload([replace(update, metric=240)]), 0.27)
    assert router.next_hop(update.prefix64) == PEER + 1


def sent_to(actions: Iterable[object], peer: int, kind: type[T]) -> list[T]:
    """The TLVs of type ``kind`` in the control payloads ``actions`` send to ``peer``."""
    return [
        t
        for a in actions
        if isinstance(a, SendControl) and a.peer == peer
        for t in decode_payload(a.payload)
        if isinstance(t, kind)
    ]


def test_split_horizon_and_triggered_update() -> None:
    router = usable_router()
    # a second, measured neighbour
    add_measured_neighbour(router, PEER + 1)
    update = signed_update(1)
    actions = router.handle_control(PEER, encode_payload([update]), 0.3)
    assert sent_to(actions, PEER + 1, Update) == []  # held for the coalescing window
    actions = router.on_timer(0.3 + router.params.update_coalesce)
    to_other = [u for u in sent_to(actions, PEER + 1, Update) if u.prefix64 == update.prefix64]
    to_next_hop = [u for u in sent_to(actions, PEER, Update) if u.prefix64 == update.prefix64]
    assert len(to_other) == 1 and to_other[0].metric > update.metric
    assert to_other[0].signature == update.signature  # relayed unchanged
    assert to_other[0].seqno == update.seqno and to_other[0].router_id == update.router_id
    assert to_next_hop == []


def test_payloads_are_batched_within_size_limit() -> None:
    params = replace(DEFAULT_PARAMS, max_payload_size=400)
    net = RouterNet(params=params)
    for node in range(1, 8):
        net.link(0, node, 1 * MS)
    net.run_until(1.0)
    router = net.node(0)
    router.neighbour_up(99, net.now)
    from hyphal.wire.control import IHU, encode_payload

    hello = next(
        t
        for a in router.on_timer(net.now + 0.25)
        if isinstance(a, SendControl) and a.peer == 99
        for t in decode_payload(a.payload)
        if isinstance(t, Hello)
    )
    actions = router.handle_control(
        99, encode_payload([IHU(hello.seqno, 25, hello.timestamp)]), net.now + 0.26
    )
    payloads = [a.payload for a in actions if isinstance(a, SendControl) and a.peer == 99]
    assert len(payloads) > 1
    assert all(len(p) <= 400 for p in payloads)
    dumped = {t.prefix64 for p in payloads for t in decode_payload(p) if isinstance(t, Update)}
    assert dumped == {net.prefix(i) for i in range(8)}


def test_seqno_bump_is_rate_limited() -> None:
    from hyphal.wire.control import encode_payload

    router = usable_router()
    burst = DEFAULT_PARAMS.seqno_bump_burst
    for i in range(1, burst + 1):
        request = SeqnoRequest(router.own_prefix64, i, 10, router.router_id)
        router.handle_control(PEER, encode_payload([request]), 0.1)
        assert router.seqno == i  # the burst is served at once
    again = SeqnoRequest(router.own_prefix64, burst + 1, 10, router.router_id)
    router.handle_control(PEER, encode_payload([again]), 0.2)
    assert router.seqno == burst  # bucket empty: deferred
    assert router.next_deadline() <= 0.1 + DEFAULT_PARAMS.seqno_bump_min_interval + 1e-9
    now, actions = 0.2, []
    while router.seqno == burst and now < 3.0:
        now = min(router.next_deadline(), now + 0.1)
        actions = router.on_timer(now)
        router.handle_control(PEER, encode_payload([]), now)  # keep the neighbour alive
    # one token refills one interval after the bucket was drained at t=0.1
    assert 0.1 + DEFAULT_PARAMS.seqno_bump_min_interval - 1e-6 <= now <= 1.2
    assert router.seqno == burst + 1
    own = [u for u in sent_to(actions, PEER, Update) if u.prefix64 == router.own_prefix64]
    assert own and own[0].seqno == burst + 1 and own[0].metric == 0


def test_seqno_request_for_stale_router_id_is_answered_not_bumped() -> None:
    from hyphal.wire.control import encode_payload

    router = usable_router()
    old_id = router.public_key + b"\x00" * 8
    actions = router.handle_control(
        PEER, encode_payload([SeqnoRequest(router.own_prefix64, 9, 10, old_id)]), 0.1
    )
    assert router.seqno == 0
    own = [u for u in sent_to(actions, PEER, Update) if u.prefix64 == router.own_prefix64]
    assert own and own[0].router_id == router.router_id


def test_neighbour_down_removes_routes_and_counts() -> None:
    router = usable_router()
    update = signed_update(1)
    deliver(router, update)
    router.neighbour_down(PEER, 0.5)
    assert router.next_hop(update.prefix64) is None
    assert router.neighbours() == []
    assert router.counters["neighbours_down"] == 1


def test_link_cost_is_damped_and_floored() -> None:
    from hyphal.routing.neighbour import Neighbour

    nb = Neighbour(1, 0.0)
    assert nb.cost == INFINITY and not nb.usable
    assert nb.rtt_sample(0.0004, DEFAULT_PARAMS)  # 0.2 ms one-way: floored
    assert nb.cost == DEFAULT_PARAMS.cost_floor
    nb = Neighbour(2, 0.0)
    nb.rtt_sample(0.040, DEFAULT_PARAMS)
    assert nb.cost == 200
    for sample in (0.041, 0.039, 0.0405, 0.0395):  # jitter: no change
        assert not nb.rtt_sample(sample, DEFAULT_PARAMS)
    assert nb.cost == 200
    changed = [nb.rtt_sample(0.080, DEFAULT_PARAMS) for _ in range(20)]  # a real shift
    assert any(changed) and nb.cost > 300
