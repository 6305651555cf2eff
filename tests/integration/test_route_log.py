"""Route events through real nodes (in-memory links): the node turns the router's changes into
one INFO line each, names both next hops on a failover, tells subscribers, and a stop is quiet."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.links.endpoint import Endpoint
from hyphal.node import Node
from hyphal.node.routelog import RouteEvent
from hyphal.testing.memlink import MemoryNetwork

from .conftest import CONVERGE_WITHIN, PORT


async def start(net: MemoryNetwork, host: str, *peers: str) -> Node:
    config = NodeConfig(
        no_tun=True,
        listen_address="::",
        tcp_listen_port=PORT,
        peers=tuple(Endpoint("tcp", p, PORT) for p in peers),
    )
    node = Node(config, NodeIdentity.generate(), transport=net.transport(host))
    await node.start()
    return node


async def until(predicate: object) -> None:
    assert callable(predicate)
    async with asyncio.timeout(CONVERGE_WITHIN):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_failover_is_one_info_line_naming_both_next_hops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hyphal")
    net = MemoryNetwork()
    c = await start(net, "c")
    b = await start(net, "b", "c")
    a = await start(net, "a", "b", "c")
    nodes = [a, b, c]
    try:
        c_prefix = c.identity.address_bytes[:8]
        c_key, b_key = c.identity.public_key, b.identity.public_key
        await until(lambda: len(a.peers.links) == 2)
        peer_of = {lk.remote_public_key: lk.id for lk in a.peers.links.values()}
        await until(lambda: a.router.next_hop(c_prefix) == peer_of[c_key])
        await until(
            lambda: any(
                r.next_hop == peer_of[b_key] and r.prefix64 == c_prefix
                for r in a.router.fallback_routes()
            )
        )
        events: list[RouteEvent] = []
        a.route_log.subscribe(events.append)
        caplog.clear()
        a.remove_static(Endpoint("tcp", "c", PORT))  # the direct link goes; b relays now
        await until(lambda: a.router.next_hop(c_prefix) == peer_of[b_key])
        await asyncio.sleep(0.3)
        lines = [r.getMessage() for r in caplog.records if r.name == "hyphal.routing"]
        failovers = [m for m in lines if m.startswith(f"failover for node {c.identity.address} ")]
        assert len(failovers) == 1, lines
        assert f"next hop {c_key.hex()[:16]}… at " in failovers[0]
        assert f" -> {b_key.hex()[:16]}… at " in failovers[0]
        # (zero-latency links: the route through b is feasible only after a seqno request)
        assert "the link to the old next hop went down" in failovers[0]
        assert [(e.kind, e.public_key) for e in events if e.public_key == c_key.hex()] == [
            ("failover", c_key.hex())
        ]
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        caplog.clear()
        nodes.remove(a)
        await a.stop()
        lost_a = f"node {a.identity.address} "

        def routing_lines() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.name == "hyphal.routing"]

        await until(lambda: any(lost_a in m and "unreachable" in m for m in routing_lines()))
        lines = routing_lines()
        # a's stop is no news to a (its routes go with its links) ...
        assert not [m for m in lines if str(c.identity.address) in m or "failover" in m], lines
        # (... but it is to b, which lost a: awaited above)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        for node in nodes:
            await node.stop()
