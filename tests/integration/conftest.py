"""Three real nodes in one process over the in-memory link transport, in a line A - B - C."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.links.endpoint import Endpoint
from hyphal.node import Node
from hyphal.testing.memlink import MemoryNetwork

CONVERGE_WITHIN = 10.0  # generous bound for a shared CI machine; not a performance assertion


PORT = 9651


async def start_node(net: MemoryNetwork, host: str, peer: str | None) -> Node:
    peers = () if peer is None else (Endpoint("tcp", peer, PORT),)
    config = NodeConfig(no_tun=True, listen_address="::", tcp_listen_port=PORT, peers=peers)
    node = Node(config, NodeIdentity.generate(), transport=net.transport(host))
    await node.start()
    return node


@pytest.fixture
async def line() -> AsyncIterator[tuple[Node, Node, Node]]:
    net = MemoryNetwork()
    nodes: list[Node] = []
    try:
        a = await start_node(net, "a", None)
        nodes.append(a)
        b = await start_node(net, "b", "a")
        nodes.append(b)
        c = await start_node(net, "c", "b")
        nodes.append(c)
        c_prefix = c.identity.address_bytes[:8]
        async with asyncio.timeout(CONVERGE_WITHIN):
            # The router offers no "route installed" event to wait on, so poll the table.
            while a.public_key_for_prefix(c_prefix) is None:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        yield a, b, c
    finally:
        for node in reversed(nodes):
            await node.stop()
