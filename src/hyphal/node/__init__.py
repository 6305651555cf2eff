"""The daemon: composes identity, links, router, forwarder, bus, TUN and view into one node.

This is the only module that wires parts together, and it runs their lifecycle: every part is
built in the constructor (the router starts at the node's clock reading then); ``start`` only
binds the event loop, opens the TUN and the listeners. Every protocol core is sans-IO; the
node feeds them frames and its clock and applies the actions they return.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from ipaddress import IPv6Address

from hyphal.bus.service import MessageService
from hyphal.config import NodeConfig, parse_host_port
from hyphal.crypto.e2e import E2ECrypto, OpenedPacket
from hyphal.crypto.signing import XEdDSASigner, XEdDSAVerifier
from hyphal.dataplane.echo import Echo, PingReply
from hyphal.dataplane.forwarder import Forwarder
from hyphal.dataplane.tun import DEFAULT_MTU, TunDevice
from hyphal.dataplane.tundev import Tun, TunFactory
from hyphal.dns.part import dns_part
from hyphal.identity import NodeIdentity
from hyphal.ingress.part import IngressPart
from hyphal.links.connection import PeerLink
from hyphal.links.endpoint import Endpoint
from hyphal.links.manager import PeerManager
from hyphal.links.tcp import TcpTransport
from hyphal.links.transport import LinkTransport
from hyphal.membership.wire import FRAME_MEMBERS
from hyphal.node.admit import AdmissionGate
from hyphal.node.audit import AuditService
from hyphal.node.delivery import Registry
from hyphal.node.driver import CoreDriver
from hyphal.node.events import LinkUptimes, RecentRouteEvents
from hyphal.node.lag import LagMonitor
from hyphal.node.members import MembersPart
from hyphal.node.parts import Parts
from hyphal.node.routelog import RouteLog
from hyphal.node.tunport import TunPort
from hyphal.node.view import NodeView
from hyphal.roles import client_key
from hyphal.routing.params import RoutingParams
from hyphal.routing.router import Router
from hyphal.routing.types import Action, NeighbourDead, RouteChange, SendControl
from hyphal.services.part import ServicesPart, services_part
from hyphal.services.vippart import service_addresses_part
from hyphal.wire import data as wire_data
from hyphal.wire.control import Delegation
from hyphal.wire.errors import DecodeError
from hyphal.wire.link import FRAME_CONTROL, FRAME_DATA

log = logging.getLogger("hyphal.node")
routing_log = logging.getLogger("hyphal.routing")

__all__ = ["Node", "PingReply"]


def open_tun_device(name: str, address: IPv6Address, mtu: int) -> Tun:
    """The real TUN (the default ``tun_factory``)."""
    return TunDevice.open(name, address, mtu)


class Node:
    """One hyphal daemon."""

    def __init__(
        self,
        config: NodeConfig,
        identity: NodeIdentity,
        params: RoutingParams | None = None,
        tun_factory: TunFactory = open_tun_device,
        transport: LinkTransport | None = None,
    ) -> None:
        self.config, self.identity = config, identity
        self.params = params = config.routing_params() if params is None else params
        self._tun_factory = tun_factory
        self.started_at = time.time()
        self.loop_lag = LagMonitor(self.now)
        self.e2e = E2ECrypto(identity)
        key = identity.public_key
        signer = XEdDSASigner(identity.private_bytes())
        self.role = role = config.node_role
        self.router = Router(
            key,
            signer,
            params,
            self.now(),
            random.Random(),
            XEdDSAVerifier(),
            report_routes=True,
            client=not role.relays,
        )
        self.route_log = RouteLog()  # route events named and logged; subscribe() for more
        self._router_driver = CoreDriver("router", self.router, self._apply, self.now)
        self.route_events = RecentRouteEvents()
        self.route_log.subscribe(self.route_events)
        self.uptimes = LinkUptimes()
        self.peers = PeerManager(
            identity,
            self,
            network_name=config.network_name,
            network_key=config.network_key(),
            max_links=config.max_links,
            features=role.features,
            transport=transport or TcpTransport(role.keepalive),
        )
        self.forwarder = Forwarder(
            identity.address_bytes[:8],
            self.e2e,
            self.router,
            self._send_data,
            self._deliver,
            self._peer_key,
            relay=role.relays,
        )
        self.echo = Echo(self.forwarder, self.now)
        self.audit: AuditService | None = None
        if not config.no_route_audit:
            self.audit = AuditService(self.router, self.echo, self._router_driver.feed, self.now)
            self.forwarder.on_local_send = self.audit.note_send
        self.tun_port = TunPort(
            identity, self.forwarder, self.public_key_for_prefix, self.now, self.peers.flush_links
        )
        self.messages = MessageService(
            key,
            self._send_bus_packet,
            self.owner_of,
            store_dir=config.message_store,
            forward_dir=config.forward_dir,
        )
        bus = self.messages
        self.kinds: Registry[OpenedPacket] = Registry(self.forwarder.stats, "unhandled-kind")
        self.kinds.register(wire_data.KIND_IPV6, self.tun_port.deliver_ipv6)
        self.kinds.register(
            wire_data.KIND_BUS, lambda o: bus.handle_packet(o.src_public_key, bytes(o.body))
        )
        self.kinds.register(wire_data.KIND_ICMP_RELAY, self.tun_port.deliver_notice)
        self.kinds.register(wire_data.KIND_ECHO_REQUEST, self.echo.handle_request)
        self.kinds.register(wire_data.KIND_ECHO_REPLY, self.echo.handle_reply)
        self.frames: Registry[tuple[PeerLink, memoryview]] = Registry(
            self.forwarder.stats, "unknown-frame"
        )
        self.frames.register(FRAME_DATA, self._data_frame)
        self.frames.register(FRAME_CONTROL, self._control_frame)
        self.members = MembersPart(
            key,
            signer,
            XEdDSAVerifier(),
            config.network_name,
            links=self.peers.links.get,
            reachable=lambda prefix: self.router.next_hop(prefix) is not None,
            clock=self.now,
            name=config.member_name or "",
            region=config.region or "",
            roles=(role.value,),
            params=config.membership_params(),
            metric=self._route_metric,
            policy=config.admission_policy(),
            own_admission=config.own_admission(),
        )
        self.frames.register(FRAME_MEMBERS, self.members.frame)
        self.parts = Parts()  # features with a lifecycle: one add line each (node/parts.py)
        self.services: ServicesPart = services_part(
            config, identity, self.members, self._route_metric, self.now
        )  # the ServiceDirectory (services/directory.py) DNS, service addresses and ingress ask
        self.parts.add(
            dns_part(
                config,
                identity,
                self.public_key_for_prefix,
                self.now,
                lambda: self.tun_port.tun is not None,
                self.members,
                self.services,
            )
        )
        self.parts.add(self.services)
        self.parts.add(
            service_addresses_part(
                lambda: self.tun_port.bridge,
                lambda: self.services,
                lambda: self.services.prefix,
                self.now,
                None if config.no_tun else config.tun_name,
            )
        )  # service addresses in the dataplane: flow pinning, the TUN's service addresses
        # public ingress and unwrap listeners, asking the services part's directory
        self.parts.add(
            IngressPart(lambda: self.services, config.ingress, config.unwrap, config.ingress_file)
        )
        self.gate = AdmissionGate(
            self.members, self._link_full, self.peers.close_link, self.forwarder.stats.drop
        )
        self.view = NodeView(
            identity,
            self.started_at,
            self.peers,
            self.router,
            self.forwarder.stats,
            lambda: self.tun_port.write_drops,
            self.loop_lag,
            self.messages,
            config=config,
            route_events=self.route_events,
            uptimes=self.uptimes,
            listen_port=lambda: self.peers.listen_port,
            members=self.members,
            parts=self.parts,
        )

    # lifecycle --------------------------------------------------------------------------------

    @staticmethod
    def now() -> float:
        """The cores' clock: monotonic with sub-microsecond resolution (uvloop's is 1 ms)."""
        return time.monotonic()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await self.messages.start()
        if not self.config.no_tun:
            mtu = self.config.tun_mtu or DEFAULT_MTU
            await self.tun_port.open(self._tun_factory, self.config.tun_name, mtu)
        await self.peers.start(
            self.config.listen_address,
            self.config.tcp_listen_port,
            self.config.peers,
            listen=self.config.listens,
        )
        self._router_driver.start(loop)
        self.members.start(loop)
        if self.audit is not None:
            self.audit.start(loop)
        self.loop_lag.start(loop)
        await self.parts.start()
        log.info(
            "node %s up: address %s, subnet %s, role %s",
            self.identity.public_key.hex(),
            self.identity.address,
            self.identity.subnet,
            self.role,
        )

    async def stop(self) -> None:
        self.route_log.muted = True  # every route goes down with the links: none of it is news
        await self.parts.stop()
        self.loop_lag.close()
        self._router_driver.close()
        self.members.close()
        if self.audit is not None:
            self.audit.close()
        self.tun_port.close()
        await self.messages.close()
        await self.peers.close()

    # router and links -------------------------------------------------------------------------

    def originate(self, prefix64: bytes, delegation: Delegation) -> None:
        """Announce another /64 whose owner delegated it to our key (raises ValueError if the
        delegation does not hold; see :meth:`Router.originate`)."""
        self._router_driver.feed(self.router.originate(prefix64, delegation, self.now()))

    def withdraw(self, prefix64: bytes) -> None:
        """Stop announcing a delegated /64 (a retraction goes to every neighbour)."""
        self._router_driver.feed(self.router.withdraw(prefix64, self.now()))

    def _apply(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, SendControl):
                link = self.peers.links.get(action.peer)
                if link is not None:
                    link.send_frame(FRAME_CONTROL, action.payload)
            elif isinstance(action, RouteChange):
                self.route_log.apply(action)
            elif isinstance(action, NeighbourDead):
                routing_log.debug("neighbour on link %d silent for the dead interval", action.peer)
                self.peers.close_link(
                    action.peer, "no hello from the peer within the dead interval"
                )

    def link_up(self, link: PeerLink) -> None:
        self.members.link_up(link)  # membership frames flow at once, admitted or not
        self.gate.link_up(link)

    def _link_full(self, link: PeerLink) -> None:
        """The gate let ``link`` in (at once, or when the peer's admission arrived)."""
        self.uptimes.up(link.id, time.time())
        self.route_log.peer_up(link.id, link.remote_public_key, link.remote_address)
        routing_log.debug("neighbour up on link %d (%s)", link.id, link.remote_address)
        client = client_key(link.features, link.remote_public_key)
        self._router_driver.feed(self.router.neighbour_up(link.id, self.now(), client))

    def link_down(self, link: PeerLink, reason: str) -> None:
        self.members.link_down(link)
        if not self.gate.link_down(link):
            return
        routing_log.debug("neighbour down on link %d: %s", link.id, reason)
        self._router_driver.feed(self.router.neighbour_down(link.id, self.now()))
        self.route_log.peer_gone(link.id)
        self.uptimes.down(link.id)

    def link_frame(self, link: PeerLink, frame_type: int, body: memoryview) -> None:
        if self.gate.allows(link, frame_type):
            self.frames.dispatch(frame_type, (link, body))

    def _data_frame(self, frame: tuple[PeerLink, memoryview]) -> None:
        self.forwarder.from_peer(frame[0].id, frame[1])

    def _control_frame(self, frame: tuple[PeerLink, memoryview]) -> None:
        link, body = frame
        try:
            actions = self.router.handle_control(link.id, bytes(body), self.now())
        except DecodeError as exc:
            link.close(f"malformed routing message, dropping the peer: {exc}")
            return
        self._router_driver.feed(actions)
        self.messages.routes_changed()  # where routes (and their owners' keys) are learned

    def _send_data(self, peer: int, packet: bytes | bytearray | memoryview) -> bool:
        link = self.peers.links.get(peer)
        if link is None or not link.send_frame(FRAME_DATA, packet):
            return False
        if link.remote_public_key is not None:
            self.forwarder.stats.peer(link.remote_public_key).tx.add(len(packet))
        return True

    def _peer_key(self, peer: int) -> bytes | None:
        link = self.peers.links.get(peer)
        return link.remote_public_key if link is not None else None

    def _deliver(self, opened: OpenedPacket) -> None:
        """A packet for us, opened: to the handler registered for its kind."""
        self.kinds.dispatch(opened.kind, opened)

    def _send_bus_packet(self, dst_public_key: bytes, body: bytes) -> bool:
        return self.forwarder.send_to(dst_public_key, wire_data.KIND_BUS, body) is None

    # the API's operations (NodeApi) -----------------------------------------------------------

    def add_static(self, endpoint: Endpoint) -> None:
        self.peers.add_static(endpoint)

    def remove_static(self, endpoint: Endpoint) -> None:
        self.peers.remove_static(endpoint)

    async def ping(
        self,
        dst_public_key: bytes,
        timeout: float = 2.0,  # noqa: ASYNC109
        size: int = 0,
    ) -> PingReply:
        """One end-to-end encrypted echo through the mesh; raises NoRoute or PingFailed."""
        return await self.echo.ping(dst_public_key, timeout, size)

    def message_service(self) -> MessageService:
        return self.messages

    def owner_of(self, address: IPv6Address) -> bytes | None:
        """The public key of the node owning an overlay address (ourselves included)."""
        return self.public_key_for_prefix(address.packed[:8])

    def _route_metric(self, prefix64: bytes) -> int | None:
        route = self.router.selected_route(prefix64)
        return None if route is None else route.metric

    def key_for_name(self, name: str) -> bytes | None:
        """The public key of the member owning ``name`` (the winner of a duplicate claim)."""
        return self.members.key_for_name(name)

    def public_key_for_prefix(self, prefix64: bytes) -> bytes | None:
        """The key owning ``prefix64`` (ours included: the router answers for its own prefix)."""
        return self.router.route_public_key(prefix64)

    def api_bind(self) -> tuple[str, int]:
        return parse_host_port(self.config.api_addr, "api_addr")
