"""Three real nodes in one process over the in-memory link transport, in a line A - B - C."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.links.endpoint import Endpoint
from hyphal.node import Node
from hyphal.testing.memlink import MemoryNetwork

CONVERGE_WITHIN = 10.0  # generous bound for a shared CI machine; not a performance assertion


PORT = 9651


async def start_node(net: MemoryNetwork, host: str, peer: str | None, **config: Any) -> Node:
    """A started node on ``host`` of ``net``, dialing ``peer``; ``config`` adds NodeConfig keys."""
    peers = () if peer is None else (Endpoint("tcp", peer, PORT),)
    node_config = NodeConfig(
        no_tun=True, listen_address="::", tcp_listen_port=PORT, peers=peers, **config
    )
    node = Node(node_config, NodeIdentity.generate(), transport=net.transport(host))
    await node.start()
    return node


async def until(condition: Callable[[], bool], within: float = CONVERGE_WITHIN) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


@pytest.fixture
async def named_line() -> AsyncIterator[list[Node]]:
    """A - B - C named alpha, beta, gamma (region fra), once every node knows every name."""
    net = MemoryNetwork()
    nodes: list[Node] = []
    names = {"alpha", "beta", "gamma"}
    try:
        for host, peer, name in (("a", None, "alpha"), ("b", "a", "beta"), ("c", "b", "gamma")):
            nodes.append(await start_node(net, host, peer, member_name=name, region="fra"))
        await until(
            lambda: all(
                {m.name for m in n.members.members() if m.reachable} == names for n in nodes
            )
        )
        yield nodes
    finally:
        for node in reversed(nodes):
            await node.stop()


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
