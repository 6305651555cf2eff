"""Three real nodes in one process over the in-memory link transport (A - B - C): real
handshakes, routers, forwarders and buses, no sockets, no TUN and no root.

Route convergence, ping and a bus message A -> C through B; the node-level part of issue 8
item 1 (a remote node's oversized echo costs no link); issue 9 item 5 (the admin API picks HTTP
statuses by error type).
"""

from __future__ import annotations

import httpx
import pytest

from hyphal.api.app import create_app
from hyphal.api.metrics import metrics_app
from hyphal.crypto.session import MAX_RECORD_PLAINTEXT
from hyphal.dataplane.errors import PingFailed
from hyphal.identity import NodeIdentity
from hyphal.node import Node
from hyphal.wire import data as wire
from hyphal.wire.link import FRAME_HEADER_SIZE

from .conftest import PORT


def c_link_to_b(c: Node, b: Node) -> int:
    (link,) = [k for k in c.peers.links.values() if k.remote_public_key == b.identity.public_key]
    return link.id


async def test_ping_a_to_c_through_b(line: tuple[Node, Node, Node]) -> None:
    a, _, c = line
    reply = await a.ping(c.identity.public_key, timeout=5)
    assert reply.hops == 2


async def test_echo_whose_reply_exceeds_a_record_costs_no_link(
    line: tuple[Node, Node, Node],
) -> None:
    a, b, c = line
    link_id = c_link_to_b(c, b)
    # The request fills one link frame exactly (1 MiB - 4); the reply would be one byte longer.
    size = MAX_RECORD_PLAINTEXT - FRAME_HEADER_SIZE - wire.HEADER_SIZE - 1 - wire.TAG_SIZE - 8
    with pytest.raises(PingFailed):
        await a.ping(c.identity.public_key, timeout=1, size=size)
    assert c.forwarder.stats.drops["e2e-too-big"] == 1
    assert c_link_to_b(c, b) == link_id
    assert (await a.ping(c.identity.public_key, timeout=5)).hops == 2


async def test_admin_ping_statuses_follow_error_types(line: tuple[Node, Node, Node]) -> None:
    a, _, c = line
    transport = httpx.ASGITransport(app=create_app(a))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        ok = await client.post(
            "/api/v1/admin/ping", json={"dst": {"pk": c.identity.public_key.hex()}}
        )
        assert ok.status_code == 200 and ok.json()["hops"] == 2
        unknown = NodeIdentity.generate().address
        no_route = await client.post("/api/v1/admin/ping", json={"dst": {"ip": str(unknown)}})
        assert no_route.status_code == 404
        assert no_route.json()["error"] == f"no known node owns {unknown}"
        bad = await client.post("/api/v1/admin/ping", json={"dst": {"ip": "nonsense"}})
        assert bad.status_code == 400
        assert bad.json()["error"] == "dst.ip is not an IPv6 address: 'nonsense'"


async def test_bus_message_a_to_c_through_b(line: tuple[Node, Node, Node]) -> None:
    a, _, c = line
    msg_id = a.message_service().send(c.identity.public_key, b"over two hops", topic=b"t")
    message = await c.message_service().pop(b"t", timeout=5)
    assert message is not None
    assert (message.msg_id, message.src_pk, message.payload) == (
        msg_id,
        a.identity.public_key,
        b"over two hops",
    )


async def test_metrics_export_loop_lag(line: tuple[Node, Node, Node]) -> None:
    a, _, _ = line
    transport = httpx.ASGITransport(app=metrics_app(a))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        body = (await client.get("/metrics")).text
    (lag,) = [row for row in body.splitlines() if row.startswith("hyphal_loop_lag_max_seconds")]
    assert float(lag.split()[1]) >= 0.0


async def test_admin_peer_rows_keep_mycelium_json(line: tuple[Node, Node, Node]) -> None:
    """The API renders the link layer's typed peer snapshots in Mycelium's camelCase shape."""
    a, b, c = line
    transport = httpx.ASGITransport(app=create_app(b))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        rows = (await client.get("/api/v1/admin/peers")).json()
    by_type = {row["type"]: row for row in rows}
    assert sorted(by_type) == ["inbound", "static"]
    static = by_type["static"]
    assert list(static) == [
        "endpoint",
        "type",
        "connectionState",
        "txBytes",
        "rxBytes",
        "discoveredSeconds",
        "lastConnectedSeconds",
        "lastError",
        "publicKey",
        "rttMs",
        "linkCost",
        "address",  # hyphal additions (issue 13): overlay address, name, link uptime
        "name",
        "uptimeSeconds",
    ]
    assert static["address"] == str(a.identity.address) and static["uptimeSeconds"] >= 0
    assert static["endpoint"] == {"proto": "tcp", "socketAddr": f"a:{PORT}"}
    assert (static["connectionState"], static["lastError"]) == ("alive", None)
    assert static["publicKey"] == a.identity.public_key.hex()
    inbound = by_type["inbound"]
    assert list(inbound) == list(static)  # every row has every field, whatever its type
    assert inbound["connectionState"] == "alive"
    assert inbound["publicKey"] == c.identity.public_key.hex()
