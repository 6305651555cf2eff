"""Issue 10, roles, with real nodes over the in-memory transport: real handshakes carry the
client bit. C (``role = client``) dials A and B and listens nowhere; A and B have no link of
their own, so the only path between them crosses C, and it must not be used: neither when C is
honest nor when it is a ``LyingClient`` that re-advertises everything at metric 0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from hyphal.api.app import create_app
from hyphal.config import NodeConfig
from hyphal.dataplane.errors import NoRoute
from hyphal.identity import NodeIdentity
from hyphal.links.capabilities import FEATURE_CLIENT
from hyphal.links.endpoint import Endpoint
from hyphal.node import Node
from hyphal.testing.hostile import LyingClient
from hyphal.testing.memlink import MemoryNetwork

from .conftest import CONVERGE_WITHIN, PORT


@pytest.fixture(params=[Node, LyingClient], ids=["honest", "lying"])
async def vee(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Node, Node, Node]]:
    client_class: type[Node] = request.param
    net = MemoryNetwork()
    nodes: list[Node] = []
    try:
        for host in ("a", "b"):
            config = NodeConfig(no_tun=True, tcp_listen_port=PORT)
            nodes.append(Node(config, NodeIdentity.generate(), transport=net.transport(host)))
        peers = (Endpoint("tcp", "a", PORT), Endpoint("tcp", "b", PORT))
        config = NodeConfig(no_tun=True, tcp_listen_port=PORT, peers=peers, role="client")
        nodes.append(client_class(config, NodeIdentity.generate(), transport=net.transport("c")))
        for node in nodes:
            await node.start()
        a, b, c = nodes
        async with asyncio.timeout(CONVERGE_WITHIN):
            while not (  # noqa: ASYNC110
                a.public_key_for_prefix(c.identity.address_bytes[:8])
                and b.public_key_for_prefix(c.identity.address_bytes[:8])
                and c.public_key_for_prefix(a.identity.address_bytes[:8])
                and c.public_key_for_prefix(b.identity.address_bytes[:8])
            ):
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # a few hello rounds and triggered updates more
        yield a, b, c
    finally:
        for node in reversed(nodes):
            await node.stop()


async def test_client_is_reachable_and_carries_no_transit(vee: tuple[Node, Node, Node]) -> None:
    a, b, c = vee
    assert c.peers.listen_port == 0  # a client only dials out
    for node in (a, b):
        (link,) = node.peers.links.values()
        assert link.features & FEATURE_CLIENT
        assert (await node.ping(c.identity.public_key, timeout=5)).hops == 1
    (to_a, to_b) = sorted(c.peers.links.values(), key=lambda k: k.id)
    assert not to_a.features & FEATURE_CLIENT and not to_b.features & FEATURE_CLIENT
    assert (await c.ping(a.identity.public_key, timeout=5)).hops == 1
    # A and B never learn each other through C ...
    assert a.public_key_for_prefix(b.identity.address_bytes[:8]) is None
    assert b.public_key_for_prefix(a.identity.address_bytes[:8]) is None
    with pytest.raises(NoRoute):
        await a.ping(b.identity.public_key, timeout=1)
    # ... an honest client never offers (nothing refused); a lying one is refused and counted
    refused = a.router.counters["updates_refused_client"]
    assert refused > 0 if isinstance(c, LyingClient) else refused == 0
    assert c.forwarder.stats.forwarded.packets == 0
    assert "transit-refused" not in c.forwarder.stats.drops


async def test_status_reports_the_role_and_no_listener(vee: tuple[Node, Node, Node]) -> None:
    a, _, c = vee
    for node, role, listening in ((a, "peer", True), (c, "client", False)):
        transport = httpx.ASGITransport(app=create_app(node))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            body = (await client.get("/api/v1/admin/status")).json()
        assert body["self"]["role"] == role
        assert bool(body["listen"]) is listening
