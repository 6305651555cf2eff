"""Admin endpoints (Mycelium-compatible paths and shapes): node info, peers, routes, ping, stats."""

from __future__ import annotations

import ipaddress
import time
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Body, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from hyphal.api.codec import resolve_destination
from hyphal.api.errors import error, error_responses, text_error_responses
from hyphal.dataplane.errors import ServiceError
from hyphal.identity import address_for_public_key
from hyphal.links.endpoint import Endpoint, EndpointError
from hyphal.links.manager import PeerExistsError, PeerInfo, PeerNotFoundError
from hyphal.routing.metric import INFINITY
from hyphal.routing.types import NeighbourInfo

if TYPE_CHECKING:
    from hyphal.node.routelog import RouteEvent
    from hyphal.node.view import NodeApi, NodeView, RouteView


class NodeInfo(BaseModel):
    nodeSubnet: str
    nodeIp: str
    nodePubkey: str
    nodeStartTime: int


class AddPeer(BaseModel):
    endpoint: str = Field(
        description="Peer URI, e.g. tcp://192.0.2.6:9651 or tcp://[2001:db8::1]:9651"
    )


class Destination(BaseModel):
    ip: str | None = Field(default=None, description="An overlay IP in the destination's /64")
    pk: str | None = Field(default=None, description="The destination's hex public key")
    name: str | None = Field(default=None, description="(hyphal) The destination's member name")


class PingRequest(BaseModel):
    dst: Destination
    timeout: float = Field(default=2.0, gt=0, le=60)
    size: int = Field(default=0, ge=0, le=60000)


class PingResult(BaseModel):
    rtt_ms: float
    hops: int
    size: int


def admin_router(node: NodeApi) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    view = node.view

    def route_rows(routes: list[RouteView]) -> list[dict[str, Any]]:
        rows = []
        rtts = {n.peer: n.rtt for n in view.neighbours()}
        for r in sorted(routes, key=lambda r: r.route.prefix64):
            hop = r.next_hop
            rtt = rtts.get(r.route.next_hop)
            if hop is None:
                hop_name = f"link {r.route.next_hop} (gone)"
            else:
                key = hop.public_key.hex()[:16] if hop.public_key else "?"
                hop_name = f"TCP {hop.remote_address} {key}"
            rows.append(
                {
                    "subnet": str(r.route.subnet),
                    "nextHop": hop_name,
                    "metric": "infinite" if r.route.metric >= INFINITY else r.route.metric,
                    "seqno": r.route.seqno,
                    "publicKey": r.route.public_key.hex(),
                    "nextHopPublicKey": hop.public_key.hex()
                    if hop is not None and hop.public_key
                    else None,
                    # (hyphal) who the route reaches, and who carries it first
                    "address": str(address_for_public_key(r.route.public_key)),
                    "name": view.member_name(r.route.public_key),
                    "nextHopAddress": str(address_for_public_key(hop.public_key))
                    if hop is not None and hop.public_key
                    else None,
                    "nextHopRttMs": None if rtt is None else round(rtt * 1000, 3),
                    "nextHopName": view.member_name(hop.public_key) if hop is not None else None,
                }
            )
        return rows

    @router.get("/admin", response_model=NodeInfo, tags=["Admin"])
    async def get_info() -> NodeInfo:
        me = view.identity()
        return NodeInfo(
            nodeSubnet=str(me.subnet),
            nodeIp=str(me.address),
            nodePubkey=me.public_key.hex(),
            nodeStartTime=int(me.started_at),
        )

    def peer_row(info: PeerInfo, neighbours: dict[int, NeighbourInfo]) -> dict[str, object]:
        """Mycelium's PeerStats shape (camelCase), plus our key, RTT and link cost."""
        row: dict[str, object] = {
            "endpoint": {"proto": info.proto, "socketAddr": info.socket_addr},
            "type": info.kind.value,
            "connectionState": info.state.value,
            "txBytes": info.tx_bytes,
            "rxBytes": info.rx_bytes,
        }
        # Every row has every field (null when unknown), whatever the peer's type.
        row["discoveredSeconds"] = info.discovered_seconds
        row["lastConnectedSeconds"] = info.last_connected_seconds
        row["lastError"] = info.last_error
        link = info.link
        n = neighbours.get(link.id) if link is not None else None
        key = link.remote_public_key if link is not None else None
        row["publicKey"] = key.hex() if key else None
        row["rttMs"] = round(n.rtt * 1000, 3) if n is not None and n.rtt is not None else None
        row["linkCost"] = n.link_cost if n is not None else None
        # (hyphal) the peer's overlay address, member name and link uptime
        row["address"] = str(address_for_public_key(key)) if key else None
        row["name"] = view.member_name(key)
        up = view.link_up_since(link.id) if link is not None else None
        row["uptimeSeconds"] = None if up is None else max(0, int(time.time() - up))
        return row

    @router.get("/admin/peers", tags=["Peer"])
    async def get_peers() -> list[dict[str, object]]:
        neighbours = {n.peer: n for n in view.neighbours()}
        return [peer_row(info, neighbours) for info in view.peers()]

    @router.get("/admin/status", tags=["Admin"])
    async def get_status() -> dict[str, Any]:
        """(hyphal) Everything `hyphal status` shows, in one answer."""
        neighbours = {n.peer: n for n in view.neighbours()}
        return status_body(view, [peer_row(info, neighbours) for info in view.peers()])

    @router.post(
        "/admin/peers", status_code=204, tags=["Peer"], responses=text_error_responses(400, 409)
    )
    async def add_peer(body: AddPeer) -> Response:
        try:
            node.add_static(Endpoint.parse(body.endpoint))
        except EndpointError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        except PeerExistsError as exc:
            return PlainTextResponse(str(exc), status_code=409)
        return Response(status_code=204)

    @router.delete(
        "/admin/peers/{endpoint:path}",
        status_code=204,
        tags=["Peer"],
        responses=text_error_responses(400, 404),
    )
    async def delete_peer(endpoint: str) -> Response:
        try:
            node.remove_static(Endpoint.parse(unquote(endpoint)))
        except EndpointError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        except PeerNotFoundError:
            return PlainTextResponse(f"no static peer {unquote(endpoint)}", status_code=404)
        return Response(status_code=204)

    @router.get("/admin/routes/selected", tags=["Route"])
    async def selected_routes() -> list[dict[str, Any]]:
        return route_rows(view.selected_routes())

    @router.get("/admin/routes/fallback", tags=["Route"])
    async def fallback_routes() -> list[dict[str, Any]]:
        return route_rows(view.fallback_routes())

    @router.get("/admin/routes/queried", tags=["Route"])
    async def queried_routes() -> list[dict[str, Any]]:
        return []  # hyphal keeps the full table; it never has subnets under query

    @router.get("/pubkey/{ip}", tags=["Admin"], responses=error_responses(400, 404))
    async def pubkey(ip: str) -> Any:
        try:
            address = ipaddress.IPv6Address(ip)
        except ValueError:
            return error(400, f"{ip!r} is not an IPv6 address")
        key = node.owner_of(address)
        if key is None:
            return error(404, f"no route covers {address}")
        return {"publicKey": key.hex()}

    @router.get("/admin/stats/packets", tags=["Statistics"])
    async def packet_stats() -> dict[str, object]:
        stats = view.packet_stats()
        return {
            **stats.report,
            "tunWriteDrops": stats.tun_write_drops,
            "linkDroppedFrames": stats.link_dropped_frames,
        }

    @router.post(
        "/admin/ping",
        response_model=PingResult,
        tags=["Admin"],
        responses=error_responses(400, 404, 408),
    )
    async def ping(request: Annotated[PingRequest, Body()]) -> Any:
        try:
            dst = request.dst
            target = resolve_destination(
                dst.ip, dst.pk, node.owner_of, name=dst.name, key_for_name=node.key_for_name
            )
            reply = await node.ping(target, request.timeout, request.size)
        except ServiceError as exc:
            return error(exc.status, str(exc))
        return PingResult(rtt_ms=round(reply.rtt * 1000, 3), hops=reply.hops, size=reply.size)

    return router


def failover_body(event: RouteEvent) -> dict[str, Any]:
    return {
        "time": round(event.at, 3),
        "kind": event.kind,
        "publicKey": event.public_key,
        "address": event.address,
        "from": event.old_hop,
        "to": event.new_hop,
        "metric": event.metric,
        "reason": event.reason,
    }


def status_body(view: NodeView, peers: list[dict[str, Any]]) -> dict[str, Any]:
    """The body of ``GET /api/v1/admin/status``."""
    me = view.identity()
    info = view.self_info()
    members = view.member_counts()
    host = info.listen_address
    listen = (
        f"tcp://[{host}]:{info.listen_port}" if ":" in host else f"tcp://{host}:{info.listen_port}"
    )
    return {
        "self": {
            "name": info.name,
            "address": str(me.address),
            "subnet": str(me.subnet),
            "publicKey": me.public_key.hex(),
            "network": {"public": info.network_name is None, "name": info.network_name},
            "role": info.role,
            "version": info.version,
            "startTime": int(me.started_at),
            "uptimeSeconds": max(0, int(time.time() - me.started_at)),
        },
        "listen": [listen] if info.listen_port else [],
        "apiAddr": info.api_addr,
        "metricsAddr": info.metrics_addr,
        "peers": peers,
        "counts": {
            "peers": len(peers),
            "peersAlive": sum(1 for p in peers if p["connectionState"] == "alive"),
            "routes": len(view.selected_routes()),
            "fallbackRoutes": len(view.fallback_routes()),
            "members": sum(members),
            "membersReachable": members[0],
        },
        "failoversTotal": view.failover_total(),
        "recentFailovers": [failover_body(e) for e in reversed(view.recent_failovers())],
    }
