"""Messages to a node that is down, through the real HTTP API of real in-process nodes over
memlink (A - B, and C joining B): accepted at once, delivered when the destination comes back
within the deadline, failed with a reason when it does not (issue 13, "Messages behave like
Mycelium's")."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from hyphal.api.app import create_app
from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.links.endpoint import Endpoint
from hyphal.node import Node
from hyphal.testing.memlink import MemoryNetwork

from .conftest import CONVERGE_WITHIN, PORT


async def start(net: MemoryNetwork, host: str, peer: str | None, identity: NodeIdentity) -> Node:
    peers = () if peer is None else (Endpoint("tcp", peer, PORT),)
    config = NodeConfig(no_tun=True, listen_address="::", tcp_listen_port=PORT, peers=peers)
    node = Node(config, identity, transport=net.transport(host))
    await node.start()
    return node


async def wait_for(cond: object, within: float = CONVERGE_WITHIN) -> None:
    async with asyncio.timeout(within):
        # Neither the router nor the status records offer an event to wait on: poll.
        while not cond():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.02)


@pytest.fixture
async def mesh() -> AsyncIterator[tuple[MemoryNetwork, Node, Node]]:
    net = MemoryNetwork()
    a = await start(net, "a", None, NodeIdentity.generate())
    b = await start(net, "b", "a", NodeIdentity.generate())
    try:
        yield net, a, b
    finally:
        await b.stop()
        await a.stop()


async def status(client: httpx.AsyncClient, msg_id: str) -> dict[str, object]:
    response = await client.get(f"/api/v1/messages/status/{msg_id}")
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_sent_while_down_delivered_when_the_node_comes_back(
    mesh: tuple[MemoryNetwork, Node, Node],
) -> None:
    net, a, _ = mesh
    c_identity = NodeIdentity.generate()
    c = await start(net, "c", "b", c_identity)
    prefix = c_identity.address_bytes[:8]
    await wait_for(lambda: a.public_key_for_prefix(prefix) is not None)
    await c.stop()  # C goes down; its route is retracted
    await wait_for(lambda: a.public_key_for_prefix(prefix) is None)

    transport = httpx.ASGITransport(app=create_app(a))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        sent = await client.post(
            "/api/v1/messages",
            params={"deadline": 60},
            json={
                "dst": {"ip": str(c_identity.address)},
                "topic": base64.b64encode(b"t").decode(),
                "payload": base64.b64encode(b"are you back?").decode(),
            },
        )
        assert sent.status_code == 201, sent.text
        msg_id = sent.json()["id"]
        first = await status(client, msg_id)
        assert first["state"] == "pending" and first["dstPk"] is None
        assert first["dst"] == str(c_identity.address)
        assert "no node owning" in str(first["reason"])

        c = await start(net, "c", "b", c_identity)  # the same node comes back
        try:
            message = await c.message_service().pop(b"t", timeout=CONVERGE_WITHIN)
            assert message is not None and message.payload == b"are you back?"
            assert message.src_pk == a.identity.public_key
            # Popped at C, so READ follows RECEIVED.
            await wait_for(lambda: a.messages.status(bytes.fromhex(msg_id)).state == "read")  # type: ignore[union-attr]
            final = await status(client, msg_id)
            assert final["state"] == "read"
            assert final["dstPk"] == c_identity.public_key.hex()
            assert "reason" not in final
        finally:
            await c.stop()


async def test_node_that_never_comes_back_ends_failed_with_a_reason(
    mesh: tuple[MemoryNetwork, Node, Node],
) -> None:
    _, a, _ = mesh
    absent = NodeIdentity.generate()
    transport = httpx.ASGITransport(app=create_app(a))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        by_ip = await client.post(
            "/api/v1/messages",
            params={"deadline": 1.5},
            json={"dst": {"ip": str(absent.address)}, "payload": "aGk="},
        )
        by_pk = await client.post(
            "/api/v1/messages",
            params={"deadline": 1.5},
            json={"dst": {"pk": absent.public_key.hex()}, "payload": "aGk="},
        )
        assert (by_ip.status_code, by_pk.status_code) == (201, 201)
        ip_id, pk_id = by_ip.json()["id"], by_pk.json()["id"]
        assert (await status(client, pk_id))["state"] == "pending"
        await wait_for(
            lambda: all(
                a.messages.status(bytes.fromhex(i)).state == "aborted"  # type: ignore[union-attr]
                for i in (ip_id, pk_id)
            ),
            within=10,
        )
        ip_final, pk_final = await status(client, ip_id), await status(client, pk_id)
        assert ip_final["state"] == pk_final["state"] == "aborted"
        assert ip_final["reason"] == (
            f"deadline passed: no node owning {absent.address} became reachable"
        )
        assert pk_final["reason"] == (
            "deadline passed: the receiver never answered (offline or unreachable)"
        )
        outside = await client.post(
            "/api/v1/messages", json={"dst": {"ip": "2001:db8::1"}, "payload": "aGk="}
        )
        assert outside.status_code == 400
        assert "not an overlay address" in outside.json()["error"]
