"""The route audit wired into real nodes (issue 8 item 5, metric lying), in one process over the
in-memory link transport: a square A-L-D, A-H-D.

With L a liar (every Update it sends claims metric 0; every DATA frame it should relay is
dropped), A first routes to D through L; its audit's probes are lost, it demotes L for D, and A
reaches D through H. With L honest, many probe rounds demote nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence

import pytest

from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.links.endpoint import Endpoint
from hyphal.node import Node
from hyphal.routing.params import DEFAULT_PARAMS
from hyphal.testing.hostile import MetricLiar
from hyphal.testing.memlink import MemoryNetwork
from hyphal.wire import data as wire

PORT = 9652
WITHIN = 15.0  # generous bound for a shared CI machine; not a performance assertion
# Audit rounds faster than the defaults, so the test takes seconds (the logic is the same).
PARAMS = dataclasses.replace(
    DEFAULT_PARAMS, audit_interval=0.2, audit_probe_every=0.4, audit_timeout=0.4
)


async def start(
    net: MemoryNetwork, host: str, peers: Sequence[str], cls: type[Node] = Node
) -> Node:
    config = NodeConfig(
        no_tun=True,
        listen_address="::",
        tcp_listen_port=PORT,
        peers=tuple(Endpoint("tcp", p, PORT) for p in peers),
    )
    node = cls(config, NodeIdentity.generate(), PARAMS, transport=net.transport(host))
    await node.start()
    return node


def link_to(node: Node, other: Node) -> int:
    (link,) = [
        k for k in node.peers.links.values() if k.remote_public_key == other.identity.public_key
    ]
    return link.id


def next_hop(node: Node, dst: Node) -> int | None:
    assert node.router is not None
    route = node.router.selected_route(dst.identity.address_bytes[:8])
    return None if route is None else route.next_hop


async def square(liar: bool) -> AsyncIterator[tuple[Node, Node, Node, Node]]:
    net = MemoryNetwork()
    nodes: list[Node] = []
    try:
        a = await start(net, "a", [])
        nodes.append(a)
        left = await start(net, "l", ["a"], MetricLiar if liar else Node)
        nodes.append(left)
        h = await start(net, "h", ["a"])
        nodes.append(h)
        d = await start(net, "d", ["l", "h"])
        nodes.append(d)
        async with asyncio.timeout(WITHIN):
            # The router offers no "route installed" event to wait on, so poll the table.
            while len(a.peers.links) < 2 or next_hop(a, d) is None:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        yield a, left, h, d
    finally:
        for node in reversed(nodes):
            await node.stop()


@pytest.fixture
async def liar_square() -> AsyncIterator[tuple[Node, Node, Node, Node]]:
    async for nodes in square(liar=True):
        yield nodes


@pytest.fixture
async def honest_square() -> AsyncIterator[tuple[Node, Node, Node, Node]]:
    async for nodes in square(liar=False):
        yield nodes


def use(a: Node, d: Node) -> None:
    """Traffic both ways, as a conversation makes (IPv6; without a TUN it is a counted drop).

    The liar lies to D about A too, so the replies need D's audit as much as A's."""
    for src, dst in ((a, d), (d, a)):
        assert src.forwarder is not None
        src.forwarder.send_to(dst.identity.public_key, wire.KIND_IPV6, bytes(40))


async def test_liar_is_demoted_and_traffic_moves_to_the_honest_path(
    liar_square: tuple[Node, Node, Node, Node],
) -> None:
    a, liar, h, d = liar_square
    assert a.router is not None
    async with asyncio.timeout(WITHIN):
        while next_hop(a, d) != link_to(a, liar):  # the lie wins the route  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        while next_hop(a, d) != link_to(a, h) or next_hop(d, a) != link_to(d, h):
            use(a, d)
            await asyncio.sleep(0.05)
    assert a.router.counters["routes_demoted"] >= 1
    assert d.router is not None and d.router.counters["routes_demoted"] >= 1
    reply = await a.ping(d.identity.public_key, timeout=5)
    assert reply.hops == 2


async def test_honest_square_demotes_nothing(
    honest_square: tuple[Node, Node, Node, Node],
) -> None:
    nodes = honest_square
    a, _, _, d = nodes
    assert a.audit is not None
    rounds = a.audit.driver.timer_runs
    for _ in range(60):  # 3 s: about 7 probes each way
        use(a, d)
        await asyncio.sleep(0.05)
    assert a.audit.driver.timer_runs - rounds >= 10
    assert a.audit.probes_sent >= 5
    for node in nodes:
        assert node.router is not None
        assert node.router.counters["routes_demoted"] == 0


async def test_no_route_audit_turns_the_audit_off() -> None:
    config = NodeConfig(no_tun=True, no_route_audit=True, tcp_listen_port=PORT)
    node = Node(config, NodeIdentity.generate(), transport=MemoryNetwork().transport("a"))
    await node.start()
    try:
        assert node.audit is None
        assert node.forwarder is not None and node.forwarder.on_local_send is None
    finally:
        await node.stop()
