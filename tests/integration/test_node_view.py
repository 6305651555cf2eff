"""Issue 9 (read-only view): what the admin API and the metrics serve is what NodeView shows,
its snapshots do not change once taken, and a node is whole (view, API) before it starts."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from hyphal.api.app import create_app
from hyphal.api.metrics import metrics_app
from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.links.connection import PeerLink
from hyphal.node import Node
from hyphal.node.view import RouteView

BASE = "http://127.0.0.1"


async def _get(app: object, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        response = await client.get(path)
    assert response.status_code == 200
    return response


def key_of_hop(route: RouteView) -> str | None:
    hop = route.next_hop
    return hop.public_key.hex() if hop is not None and hop.public_key else None


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_view_snapshots_match_what_the_api_serves(line: tuple[Node, Node, Node]) -> None:
    a, b, c = line
    view = b.view
    app = create_app(b)
    info = (await _get(app, "/api/v1/admin")).json()
    peers = (await _get(app, "/api/v1/admin/peers")).json()
    selected = (await _get(app, "/api/v1/admin/routes/selected")).json()
    fallback = (await _get(app, "/api/v1/admin/routes/fallback")).json()
    stats = (await _get(app, "/api/v1/admin/stats/packets")).json()
    metrics = _samples((await _get(metrics_app(b), "/metrics")).text)

    me = view.identity()
    assert info == {
        "nodeSubnet": str(me.subnet),
        "nodeIp": str(me.address),
        "nodePubkey": me.public_key.hex(),
        "nodeStartTime": int(me.started_at),
    }
    assert me.public_key == b.identity.public_key

    def key_of(link: PeerLink | None) -> str | None:
        return link.remote_public_key.hex() if link and link.remote_public_key else None

    assert [(p["type"], p["endpoint"]["socketAddr"], p["publicKey"]) for p in peers] == [
        (p.kind.value, p.socket_addr, key_of(p.link)) for p in view.peers()
    ]

    def rows(routes: list[dict[str, object]]) -> list[tuple[object, ...]]:
        return [(r["subnet"], r["publicKey"], r["nextHopPublicKey"]) for r in routes]

    def shown(views: list[RouteView]) -> list[tuple[object, ...]]:
        return [
            (str(v.route.subnet), v.route.public_key.hex(), key_of_hop(v))
            for v in sorted(views, key=lambda v: v.route.prefix64)
        ]

    assert rows(selected) == shown(view.selected_routes())
    assert rows(fallback) == shown(view.fallback_routes())
    assert {r["publicKey"] for r in selected} >= {
        a.identity.public_key.hex(),
        c.identity.public_key.hex(),
    }

    packet = view.packet_stats()
    assert (stats["tunWriteDrops"], stats["linkDroppedFrames"]) == (
        packet.tun_write_drops,
        packet.link_dropped_frames,
    )
    assert stats["drops"] == dict(sorted(view.traffic().drops.items()))

    links = view.links()
    assert {link.public_key for link in links} == {a.identity.public_key, c.identity.public_key}
    assert metrics[("hyphal_peers", ())] == len(links) == 2
    assert metrics[("hyphal_static_peers", ())] == view.static_peer_count() == 1
    assert metrics[("hyphal_routes_selected", ())] == len(view.selected_routes())
    assert metrics[("hyphal_routes_fallback", ())] == len(view.fallback_routes())
    bus = view.bus()
    assert {labels[0][1] for name, labels in metrics if name == "hyphal_message_bus"} == set(
        bus.memory
    )
    assert {
        labels[0][1] for name, labels in metrics if name == "hyphal_router_events_total"
    } == set(view.router_counters())
    neighbour_labels = {labels[0][1] for name, labels in metrics if name == "hyphal_peer_link_cost"}
    assert (
        neighbour_labels == {(link.public_key or b"").hex()[:16] for link in links}
        and len(view.neighbours()) == 2
    )


async def test_view_snapshots_do_not_change_once_taken(line: tuple[Node, Node, Node]) -> None:
    a, _, c = line
    before = a.view.traffic()
    links_before = a.view.links()
    assert (await a.ping(c.identity.public_key, timeout=5)).hops == 2
    after = a.view.traffic()
    assert after.local_tx.packets == before.local_tx.packets + 1
    assert after.local_rx.packets == before.local_rx.packets + 1
    (link_before,) = links_before
    (link_after,) = a.view.links()
    assert link_after.id == link_before.id and link_after.tx_bytes > link_before.tx_bytes


async def test_a_node_is_whole_before_it_starts(tmp_path: Path) -> None:
    """Everything is built in the constructor: the view and the API answer before start()."""
    config = NodeConfig(key_file=tmp_path / "key", no_tun=True, tcp_listen_port=0)
    node = Node(config, NodeIdentity.generate())
    assert node.view.links() == [] and node.view.peers() == []
    assert node.view.packet_stats().tun_write_drops == 0
    assert node.view.bus().memory  # the bus exists (and reports its usage) already
    info = (await _get(create_app(node), "/api/v1/admin")).json()
    assert info["nodePubkey"] == node.identity.public_key.hex()
    routes = (await _get(create_app(node), "/api/v1/admin/routes/selected")).json()
    assert [r["publicKey"] for r in routes] == [
        v.route.public_key.hex() for v in node.view.selected_routes()
    ]
    metrics = _samples((await _get(metrics_app(node), "/metrics")).text)
    assert metrics[("hyphal_peers", ())] == 0
    await node.stop()  # a node that never started stops cleanly
