"""The DNS part inside real nodes (memlink): names, reachability from routes, status, metrics."""

from __future__ import annotations

import asyncio
import time

import dns.asyncquery
import dns.message
import dns.rcode
import httpx

from hyphal.api.app import create_app
from hyphal.api.metrics import metrics_app
from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.links.endpoint import Endpoint
from hyphal.node import Node
from hyphal.testing.memlink import MemoryNetwork


def dns_port(node: Node) -> int:
    status = node.view.part_status("dns")
    assert status is not None
    return int(status["port"])


async def test_names_answer_and_follow_routes() -> None:
    net = MemoryNetwork()
    b_id = NodeIdentity.generate()
    a = Node(
        NodeConfig(
            no_tun=True,
            tcp_listen_port=9651,
            member_name="alpha",
            dns_port=0,
            names=(("beta", b_id.address),),
        ),
        NodeIdentity.generate(),
        transport=net.transport("a"),
    )
    b = Node(
        NodeConfig(
            no_tun=True, tcp_listen_port=9651, no_dns=True, peers=(Endpoint("tcp", "a", 9651),)
        ),
        b_id,
        transport=net.transport("b"),
    )
    await a.start()
    try:
        port = dns_port(a)
        query = dns.message.make_query("beta.hyphal.internal", "AAAA", use_edns=0)
        offline = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=2)
        assert not offline.answer and "offline" in str(offline.options[0])
        await b.start()
        deadline = time.monotonic() + 10
        while a.public_key_for_prefix(b_id.address.packed[:8]) is None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        online = await dns.asyncquery.tcp(query, "127.0.0.1", port=port, timeout=2)
        assert [r.address for r in online.answer[0]] == [str(b_id.address)]
        own = await dns.asyncquery.udp(
            dns.message.make_query("alpha.hyphal.internal", "AAAA"), "127.0.0.1", port=port
        )
        assert [r.address for r in own.answer[0]] == [str(a.identity.address)]
        assert b.view.part_status("dns") is None

        transport = httpx.ASGITransport(app=create_app(a))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            body = (await http.get("/api/v1/dns")).json()
            assert body["domain"] == "hyphal.internal" and body["names"] == 2
            assert body["counters"]["offline"] == 1 and body["counters"]["answered-tcp"] == 1
            assert body["resolved"]["state"] == "off"  # no TUN
            assert (await http.get("/api/v1/admin/status")).json()["self"]["name"] == "alpha"
        transport = httpx.ASGITransport(app=create_app(b))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            off = await http.get("/api/v1/dns")
            assert off.status_code == 404 and "off" in off.json()["error"]
        metrics = httpx.ASGITransport(app=metrics_app(a))
        async with httpx.AsyncClient(transport=metrics, base_url="http://127.0.0.1") as http:
            text = (await http.get("/metrics")).text
        assert 'hyphal_dns_events_total{event="offline"} 1.0' in text
    finally:
        await b.stop()
        await a.stop()
    assert a.view.part_status("dns") is not None  # status survives stop; sockets are closed
