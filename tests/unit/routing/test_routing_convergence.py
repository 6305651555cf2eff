"""Several routers on the engine's RouterNet: convergence, failover, loop freedom, recovery."""

from __future__ import annotations

import itertools
import random

from hyphal.routing import DEFAULT_PARAMS, INFINITY
from hyphal.sim.routernet import RouterNet, loop_checker

A, B, C, D = 0, 1, 2, 3
MS = 0.001


def test_line_converges_through_the_middle() -> None:
    net = RouterNet()
    net.link(A, B, 5 * MS)
    net.link(B, C, 5 * MS)
    net.run_until(3.0)
    assert net.node(A).next_hop(net.prefix(C)) == B
    assert net.node(C).next_hop(net.prefix(A)) == B
    assert net.node(A).next_hop(net.prefix(B)) == B
    assert net.node(A).route_public_key(net.prefix(C)) == net.node(C).public_key
    (route,) = [r for r in net.node(A).selected_routes() if r.prefix64 == net.prefix(C)]
    # two hops of 5 ms one-way = 100 metric units, give or take rounding
    assert 95 <= route.metric <= 105
    assert route.selected and route.next_hop == B
    assert route.router_id == net.node(C).router_id
    assert str(route.subnet).endswith("::/64")


def test_first_rtt_sample_is_used_directly() -> None:
    net = RouterNet()
    net.link(A, B, 20 * MS)
    net.run_until(0.1)
    (nb,) = net.node(A).neighbours()
    assert nb.alive and nb.rtt is not None
    assert abs(nb.rtt - 0.040) < 0.002
    assert 195 <= nb.link_cost <= 205  # 20 ms one-way, not a 1000-unit initial penalty


def _square() -> RouterNet:
    # A-B-C fast (1 ms each way), A-C direct but slow (10 ms), D hangs off C.
    net = RouterNet()
    net.link(A, B, 1 * MS)
    net.link(B, C, 1 * MS)
    net.link(A, C, 10 * MS)
    net.link(C, D, 1 * MS)
    net.run_until(3.0)
    return net


def test_square_prefers_fast_two_hop_path_and_fails_over_instantly() -> None:
    net = _square()
    a = net.node(A)
    assert a.next_hop(net.prefix(C)) == B
    assert a.next_hop(net.prefix(D)) == B
    assert {r.next_hop for r in a.fallback_routes() if r.prefix64 == net.prefix(C)} == {C}
    # The link layer reports B's link closed: the switch happens inside that very call.
    net.unlink(A, B)
    assert a.next_hop(net.prefix(C)) == C
    assert a.next_hop(net.prefix(D)) == C
    assert a.next_hop(net.prefix(B)) is None or a.next_hop(net.prefix(B)) == C


def test_silent_death_is_detected_within_dead_interval_and_rerouted() -> None:
    net = _square()
    a = net.node(A)
    assert a.next_hop(net.prefix(C)) == B
    t_silent = net.now
    net.silenced.add(B)
    switched: list[tuple[float, int]] = []

    def watch(n: RouterNet, node: int) -> None:
        if not switched and a.next_hop(n.prefix(C)) == C:
            switched.append((n.now, n.events))

    net.on_event = watch
    net.run_until(t_silent + 3.0)
    detections = [
        (t, i)
        for (t, src, peer), i in zip(net.dead_events, net.dead_event_index, strict=True)
        if src == A and peer == B
    ]
    assert detections, "A never noticed B went silent"
    assert detections[0][0] - t_silent <= DEFAULT_PARAMS.dead_interval + 1e-9
    # rerouted by the very on_timer call that declared B dead
    assert switched and switched[0] == detections[0]
    assert a.next_hop(net.prefix(D)) == C
    assert B not in {n.peer for n in a.neighbours()}


def test_restarted_node_with_new_router_id_is_accepted_at_once() -> None:
    net = RouterNet()
    net.link(A, B, 1 * MS)
    net.link(B, C, 1 * MS)
    net.run_until(2.0)
    old_id = net.node(C).router_id
    net.unlink(B, C)
    net.run_for(0.5)
    assert net.node(A).next_hop(net.prefix(C)) is None
    # C restarts: same key, fresh router id, seqno back at 0
    from hyphal.sim.routernet import make_router

    net.routers[C] = make_router(C, net.now, net.params, net.verifier, seed=99)
    assert net.node(C).router_id != old_id and net.node(C).seqno == 0
    net.link(B, C, 1 * MS)
    net.run_for(0.2)
    assert net.node(A).next_hop(net.prefix(C)) == B
    (route,) = [r for r in net.node(A).selected_routes() if r.prefix64 == net.prefix(C)]
    assert route.router_id == net.node(C).router_id


def test_new_neighbour_gets_full_table_once_usable() -> None:
    net = RouterNet()
    net.link(A, B, 1 * MS)
    net.link(B, C, 1 * MS)
    net.run_until(2.0)
    net.link(C, D, 1 * MS)
    # D learns A's prefix well before any periodic update would have carried it
    net.run_for(0.1)
    assert net.node(D).next_hop(net.prefix(A)) == C
    assert net.node(A).next_hop(net.prefix(D)) == B


def test_seqno_request_recovers_a_starved_route() -> None:
    # X=0, A=1, S=2, B=3. X reaches S via A (metric 40); B announces S with 40 too, which is
    # not strictly below X's feasibility distance, so when A dies X is starved.
    x, a, s, b = 0, 1, 2, 3
    net = RouterNet()
    net.link(x, a, 2 * MS)
    net.link(a, s, 2 * MS)
    net.link(x, b, 1 * MS)
    net.link(b, s, 4 * MS)
    net.run_until(3.0)
    rx = net.node(x)
    assert rx.next_hop(net.prefix(s)) == a
    seqno_before = net.node(s).seqno
    net.unlink(x, a)
    net.unlink(a, s)
    assert rx.next_hop(net.prefix(s)) is None  # only an unfeasible route is left
    assert rx.counters["seqno_requests_sent"] >= 1
    net.run_for(0.5)
    assert rx.next_hop(net.prefix(s)) == b
    assert net.node(s).counters["seqno_bumps"] == 1
    assert net.node(s).seqno == (seqno_before + 1) & 0xFFFF


def test_origin_loss_retracts_everywhere() -> None:
    net = RouterNet()
    net.link(A, B, 1 * MS)
    net.link(B, C, 1 * MS)
    net.link(C, D, 1 * MS)
    net.run_until(2.0)
    assert net.node(A).next_hop(net.prefix(D)) == B
    net.unlink(C, D)
    net.run_for(0.1)
    for node in (A, B, C):
        assert net.node(node).next_hop(net.prefix(D)) is None
    # retracted routes are eventually forgotten entirely
    net.run_for(DEFAULT_PARAMS.retraction_hold + 1.0)
    for node in (A, B, C):
        prefixes = {r.prefix64 for r in net.node(node).fallback_routes()}
        prefixes |= {r.prefix64 for r in net.node(node).selected_routes()}
        assert net.prefix(D) not in prefixes


def test_route_expires_when_not_refreshed() -> None:
    from dataclasses import replace

    from test_routing_security import PEER, signed_update, usable_router

    from hyphal.wire.control import Hello, encode_payload

    router = usable_router()
    update = replace(signed_update(1), interval=100)  # 1 s: expires after 3.5 s
    router.handle_control(PEER, encode_payload([update]), 0.01)
    assert router.next_hop(update.prefix64) == PEER
    now, expired_at = 0.01, None
    while now < 6.0:
        now += 0.1
        router.handle_control(PEER, encode_payload([Hello(1, 25, 0)]), now)  # neighbour lives
        router.on_timer(now)
        if expired_at is None and router.next_hop(update.prefix64) is None:
            expired_at = now
    assert expired_at is not None
    assert 0.01 + 3.5 - 1e-6 <= expired_at <= 0.01 + 3.5 + 0.1 + 1e-6
    assert router.counters["routes_expired"] == 1
    assert [n.peer for n in router.neighbours()] == [PEER]


def _random_topology(
    net: RouterNet, rng: random.Random, n: int, extra: int
) -> list[tuple[int, int]]:
    edges: list[tuple[int, int]] = []
    for node in range(1, n):
        edges.append((rng.randrange(node), node))
    while len(edges) < n - 1 + extra:
        a, b = rng.sample(range(n), 2)
        if (a, b) not in edges and (b, a) not in edges:
            edges.append((a, b))
    for a, b in edges:
        net.link(a, b, rng.uniform(0.5, 20) * MS)
    return edges


def _dijkstra(net: RouterNet, src: int) -> dict[int, float]:
    import heapq

    dist = {src: 0.0}
    heap = [(0.0, src)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for a, b in net.up:
            if u in (a, b):
                v = b if u == a else a
                if v in net.silenced or u in net.silenced:
                    continue
                cost = max(net.delays[(u, v)], 0.001)
                if d + cost < dist.get(v, float("inf")):
                    dist[v] = d + cost
                    heapq.heappush(heap, (d + cost, v))
    return dist


def test_random_topology_loop_free_during_convergence_and_failures() -> None:
    rng = random.Random(7)
    net = RouterNet(seed=7)
    n = 14
    edges = _random_topology(net, rng, n, extra=10)
    net.on_event = loop_checker
    net.run_until(3.0)
    # fully converged: everyone reaches everyone, with little stretch over the optimum
    for src in range(n):
        best = _dijkstra(net, src)
        for dst in range(n):
            if dst == src:
                continue
            path = net.path(src, dst)
            assert path is not None, (src, dst)
            latency = sum(max(net.delays[(u, v)], 0.001) for u, v in itertools.pairwise(path))
            assert latency <= best[dst] * 1.1 + 0.0006, (src, dst, path)
    # failures: links closed, a node going silent, a link getting slower; loops checked throughout
    for a, b in rng.sample(edges, 4):
        net.unlink(a, b)
        net.run_for(0.3)
    net.silenced.add(rng.randrange(n))
    net.run_for(2.0)
    a, b = next(e for e in edges if (min(e), max(e)) in net.up and not net.silenced & set(e))
    net.delays[(a, b)] = net.delays[(b, a)] = 0.05
    net.run_for(5.0)
    # after the dust settles, every pair still connected in the graph is routed
    alive = [node for node in range(n) if node not in net.silenced]
    for src in alive:
        reachable = _dijkstra(net, src)
        for dst in alive:
            if dst != src and dst in reachable:
                assert net.path(src, dst) is not None, (src, dst)


def test_no_route_has_infinite_metric_selected() -> None:
    net = _square()
    for router in net.routers.values():
        for route in router.selected_routes():
            assert route.metric < INFINITY
