"""Issue 10, roles, in the simulator (``sim.routernet``): clients in a mesh never carry transit.

A random mesh of peers with slow links, and clients that each dial two or three peers over fast
links, so that a path through a client would often be the shortest. Every pair must stay
reachable through peers alone, no selected path may cross a client (at steady state and after
peer links fail), and there is never a loop. Clients that lie (declare the role but run a relaying
router that re-advertises everything) change nothing but their neighbours' refusal counters.
"""

from __future__ import annotations

import random

import pytest

from hyphal.sim.routernet import RouterNet, loop_checker, make_router

PEERS = 24
CLIENTS = 10


def build(seed: int, liars: bool) -> RouterNet:
    rng = random.Random(seed)
    net = RouterNet(seed=seed)
    clients = range(PEERS, PEERS + CLIENTS)
    for index in range(PEERS):
        net.add_node(index)
    for index in clients:
        if liars:
            net.clients.add(index)  # neighbours see the bit; the router relays anyway
            net.routers[index] = make_router(index, net.now, net.params, net.verifier, seed)
        else:
            net.add_node(index, client=True)
    # peers: a random spanning tree plus extra chords, 8 to 30 ms one way
    for index in range(1, PEERS):
        net.link(rng.randrange(index), index, rng.uniform(0.008, 0.030))
    for _ in range(PEERS):
        a, b = rng.sample(range(PEERS), 2)
        if (min(a, b), max(a, b)) not in net.up:
            net.link(a, b, rng.uniform(0.008, 0.030))
    # clients: two or three peers each, 1 ms, so going through a client would be a shortcut
    for index in clients:
        for peer in rng.sample(range(PEERS), rng.choice((2, 3))):
            net.link(index, peer, 0.001)
    net.on_event = loop_checker
    return net


def check_no_transit(net: RouterNet) -> int:
    """Every pair reachable, no path crossing a client; returns the number of paths checked."""
    checked = 0
    for src in net.routers:
        for dst in net.routers:
            if src == dst:
                continue
            path = net.path(src, dst)
            assert path is not None, f"{src} cannot reach {dst}"
            crossed = [hop for hop in path[1:-1] if hop in net.clients]
            assert not crossed, f"path {path} crosses client(s) {crossed}"
            checked += 1
    return checked


@pytest.mark.parametrize("liars", [False, True], ids=["honest", "lying"])
def test_clients_never_carry_transit(liars: bool) -> None:
    net = build(seed=5, liars=liars)
    net.run_for(15.0)
    assert check_no_transit(net) == (PEERS + CLIENTS) * (PEERS + CLIENTS - 1)
    refused = sum(net.node(i).counters["updates_refused_client"] for i in range(PEERS))
    if liars:
        assert refused > 0
    else:
        assert refused == 0
        for index in net.clients:  # an honest client's neighbours hear only its own prefix
            assert net.node(index).counters["seqno_requests_forwarded"] == 0
    # a shortcut exists: some peer pair is closer through a client than through peers alone
    assert any(
        (min(a, c), max(a, c)) in net.up
        and (min(b, c), max(b, c)) in net.up
        and (min(a, b), max(a, b)) not in net.up
        for c in net.clients
        for a in range(PEERS)
        for b in range(PEERS)
        if a != b
    )
    # peer links fail (never a bridge of the peer tree: every peer stays connected via peers)
    rng = random.Random(9)
    chords = [k for k in sorted(net.up) if k[0] < PEERS and k[1] < PEERS]
    for a, b in rng.sample(chords, 4):
        net.unlink(a, b)
        if not peers_connected(net):
            net.link(a, b, 0.02)  # keep it: without it the peers would be split
    net.run_for(10.0)
    check_no_transit(net)


def peers_connected(net: RouterNet) -> bool:
    seen, todo = {0}, [0]
    while todo:
        node = todo.pop()
        for a, b in net.up:
            if a < PEERS and b < PEERS and node in (a, b):
                other = b if node == a else a
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
    return len(seen) == PEERS
