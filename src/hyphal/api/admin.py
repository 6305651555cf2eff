"""Admin endpoints (Mycelium-compatible paths and shapes): node info, peers, routes, ping, stats."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Body, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from hyphal.api.codec import resolve_destination
from hyphal.api.errors import error, error_responses, text_error_responses
from hyphal.dataplane.errors import ServiceError
from hyphal.links.endpoint import Endpoint, EndpointError
from hyphal.links.manager import LinkKind, PeerExistsError, PeerInfo, PeerNotFoundError
from hyphal.routing.metric import INFINITY
from hyphal.routing.types import RouteInfo

if TYPE_CHECKING:
    from hyphal.links.connection import PeerLink
    from hyphal.node import Node


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


class PingRequest(BaseModel):
    dst: Destination
    timeout: float = Field(default=2.0, gt=0, le=60)
    size: int = Field(default=0, ge=0, le=60000)


class PingResult(BaseModel):
    rtt_ms: float
    hops: int
    size: int


def admin_router(node: Node) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    def link_details(link: PeerLink) -> dict[str, Any]:
        assert node.router is not None
        info = {n.peer: n for n in node.router.neighbours()}.get(link.id)
        return {
            "publicKey": link.remote_public_key.hex() if link.remote_public_key else None,
            "rttMs": round(info.rtt * 1000, 3)
            if info is not None and info.rtt is not None
            else None,
            "linkCost": info.link_cost if info is not None else None,
        }

    def next_hop_name(route: RouteInfo) -> str:
        link = node.peers.links.get(route.next_hop)
        if link is None:
            return f"link {route.next_hop} (gone)"
        key = link.remote_public_key.hex()[:16] if link.remote_public_key else "?"
        return f"TCP {link.remote_address} {key}"

    def next_hop_key(route: RouteInfo) -> str | None:
        link = node.peers.links.get(route.next_hop)
        return link.remote_public_key.hex() if link is not None and link.remote_public_key else None

    def route_rows(routes: list[RouteInfo]) -> list[dict[str, Any]]:
        return [
            {
                "subnet": str(r.subnet),
                "nextHop": next_hop_name(r),
                "metric": "infinite" if r.metric >= INFINITY else r.metric,
                "seqno": r.seqno,
                "publicKey": r.public_key.hex(),
                "nextHopPublicKey": next_hop_key(r),
            }
            for r in sorted(routes, key=lambda r: r.prefix64)
        ]

    @router.get("/admin", response_model=NodeInfo, tags=["Admin"])
    async def get_info() -> NodeInfo:
        return NodeInfo(
            nodeSubnet=str(node.identity.subnet),
            nodeIp=str(node.identity.address),
            nodePubkey=node.identity.public_key.hex(),
            nodeStartTime=int(node.started_at),
        )

    def peer_row(info: PeerInfo) -> dict[str, object]:
        """Mycelium's PeerStats shape (camelCase), plus our key, RTT and link cost."""
        row: dict[str, object] = {
            "endpoint": {"proto": info.proto, "socketAddr": info.socket_addr},
            "type": info.kind.value,
            "connectionState": info.state.value,
            "txBytes": info.tx_bytes,
            "rxBytes": info.rx_bytes,
        }
        if info.kind is LinkKind.STATIC:
            row["discoveredSeconds"] = info.discovered_seconds
            row["lastConnectedSeconds"] = info.last_connected_seconds
            row["lastError"] = info.last_error
        if info.link is not None:
            row.update(link_details(info.link))
        return row

    @router.get("/admin/peers", tags=["Peer"])
    async def get_peers() -> list[dict[str, object]]:
        return [peer_row(info) for info in node.peers.peer_infos()]

    @router.post(
        "/admin/peers", status_code=204, tags=["Peer"], responses=text_error_responses(400, 409)
    )
    async def add_peer(body: AddPeer) -> Response:
        try:
            node.peers.add_static(Endpoint.parse(body.endpoint))
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
            node.peers.remove_static(Endpoint.parse(unquote(endpoint)))
        except EndpointError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        except PeerNotFoundError:
            return PlainTextResponse(f"no static peer {unquote(endpoint)}", status_code=404)
        return Response(status_code=204)

    @router.get("/admin/routes/selected", tags=["Route"])
    async def selected_routes() -> list[dict[str, Any]]:
        assert node.router is not None
        return route_rows(node.router.selected_routes())

    @router.get("/admin/routes/fallback", tags=["Route"])
    async def fallback_routes() -> list[dict[str, Any]]:
        assert node.router is not None
        return route_rows(node.router.fallback_routes())

    @router.get("/admin/routes/queried", tags=["Route"])
    async def queried_routes() -> list[dict[str, Any]]:
        return []  # hyphal keeps the full table; it never has subnets under query

    @router.get("/pubkey/{ip}", tags=["Admin"], responses=error_responses(400, 404))
    async def pubkey(ip: str) -> Any:
        try:
            address = ipaddress.IPv6Address(ip)
        except ValueError:
            return error(400, f"{ip!r} is not an IPv6 address")
        key = node.public_key_for_prefix(address.packed[:8])
        if key is None:
            return error(404, f"no route covers {address}")
        return {"publicKey": key.hex()}

    @router.get("/admin/stats/packets", tags=["Statistics"])
    async def packet_stats() -> dict[str, object]:
        assert node.forwarder is not None
        report = node.forwarder.stats.report()
        report["tunWriteDrops"] = node.tun.write_drops if node.tun is not None else 0
        report["linkDroppedFrames"] = sum(link.dropped_frames for link in node.peers.links.values())
        return report

    @router.post(
        "/admin/ping",
        response_model=PingResult,
        tags=["Admin"],
        responses=error_responses(400, 404, 408),
    )
    async def ping(request: Annotated[PingRequest, Body()]) -> Any:
        try:
            target = resolve_destination(request.dst.ip, request.dst.pk, node.owner_of)
            reply = await node.ping(target, request.timeout, request.size)
        except ServiceError as exc:
            return error(exc.status, str(exc))
        return PingResult(rtt_ms=round(reply.rtt * 1000, 3), hops=reply.hops, size=reply.size)

    return router
