"""The daemon: composes identity, links, router, forwarder, API (and TUN and bus) into one node.

This is the only module that wires parts together. Every protocol core it drives is sans-IO; the
node feeds them frames and `loop.time()`, applies the actions they return, and keeps one timer
per core armed at the core's next deadline.
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
from hyphal.dataplane.bridge import IPv6Bridge
from hyphal.dataplane.echo import Echo, PingReply
from hyphal.dataplane.forwarder import Forwarder
from hyphal.dataplane.tun import DEFAULT_MTU, TunDevice, TunError
from hyphal.dataplane.tundev import Tun, TunFactory
from hyphal.identity import NodeIdentity
from hyphal.links.connection import PeerLink
from hyphal.links.manager import PeerManager
from hyphal.links.transport import LinkTransport
from hyphal.node.audit import AuditService
from hyphal.node.delivery import Registry
from hyphal.node.driver import CoreDriver
from hyphal.node.lag import LagMonitor
from hyphal.routing.params import DEFAULT_PARAMS, RoutingParams
from hyphal.routing.router import Router
from hyphal.routing.types import Action, NeighbourDead, SendControl
from hyphal.wire import data as wire_data
from hyphal.wire.errors import DecodeError
from hyphal.wire.link import FRAME_CONTROL, FRAME_DATA

log = logging.getLogger("hyphal.node")

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
        params: RoutingParams = DEFAULT_PARAMS,
        tun_factory: TunFactory = open_tun_device,
        transport: LinkTransport | None = None,
    ) -> None:
        self.config = config
        self._tun_factory = tun_factory
        self.loop_lag = LagMonitor(self.now)
        self.identity = identity
        self.params = params
        self.started_at = time.time()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._router_driver: CoreDriver[Action] | None = None
        self.router: Router | None = None
        self.e2e = E2ECrypto(identity)
        self.peers = PeerManager(
            identity,
            self,
            network_name=config.network_name,
            network_key=config.network_key(),
            max_links=config.max_links,
            transport=transport,
        )
        self.forwarder: Forwarder | None = None
        self.tun: Tun | None = None
        self.bridge: IPv6Bridge | None = None
        self._tun_buffer = bytearray()  # sized by _open_tun: kind byte + one packet
        self.messages: MessageService | None = None
        self.audit: AuditService | None = None

    # lifecycle --------------------------------------------------------------------------------

    @staticmethod
    def now() -> float:
        """The cores' clock: monotonic with sub-microsecond resolution (uvloop's is 1 ms)."""
        return time.monotonic()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "node not started"
        return self._loop

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        now = self.now()
        self.router = Router(
            self.identity.public_key,
            XEdDSASigner(self.identity.private_bytes()),
            self.params,
            now,
            random.Random(),
            XEdDSAVerifier(),
        )
        self._router_driver = CoreDriver("router", self.router, self._apply, self.now)
        self.forwarder = Forwarder(
            self.identity.address_bytes[:8],
            self.e2e,
            self.router,
            self._send_data,
            self._deliver,
            self._peer_key,
        )
        self.echo = Echo(self.forwarder, self.now)
        if not self.config.no_route_audit:
            self.audit = AuditService(self.router, self.echo, self._feed_router, self.now)
            self.forwarder.on_local_send = self.audit.note_send
        self.messages = MessageService(
            self.identity.public_key,
            self._send_bus_packet,
            self.owner_of,
            store_dir=self.config.message_store,
            forward_dir=self.config.forward_dir,
        )
        messages = self.messages
        self.kinds: Registry[OpenedPacket] = Registry(self.forwarder.stats, "unhandled-kind")
        self.kinds.register(wire_data.KIND_IPV6, self._deliver_ipv6)
        self.kinds.register(
            wire_data.KIND_BUS, lambda o: messages.handle_packet(o.src_public_key, bytes(o.body))
        )
        self.kinds.register(wire_data.KIND_ICMP_RELAY, self._deliver_notice)
        self.kinds.register(wire_data.KIND_ECHO_REQUEST, self.echo.handle_request)
        self.kinds.register(wire_data.KIND_ECHO_REPLY, self.echo.handle_reply)
        self.frames: Registry[tuple[PeerLink, memoryview]] = Registry(
            self.forwarder.stats, "unknown-frame"
        )
        self.frames.register(FRAME_DATA, self._data_frame)
        self.frames.register(FRAME_CONTROL, self._control_frame)
        await self.messages.start()
        if not self.config.no_tun:
            await self._open_tun()
        await self.peers.start(
            self.config.listen_address, self.config.tcp_listen_port, self.config.peers
        )
        self._router_driver.start(self._loop)
        if self.audit is not None:
            self.audit.start(self._loop)
        self.loop_lag.start(self._loop)
        log.info(
            "node %s up: address %s, subnet %s",
            self.identity.public_key.hex(),
            self.identity.address,
            self.identity.subnet,
        )

    async def _open_tun(self) -> None:
        """Create the TUN device (TunError tells the user what to do when it cannot).

        pyroute2's synchronous API runs an event loop of its own, so setup runs in a thread.
        """
        mtu = self.config.tun_mtu or DEFAULT_MTU
        self.tun = await asyncio.to_thread(
            self._tun_factory, self.config.tun_name, self.identity.address, mtu
        )
        self._tun_buffer = bytearray(1 + mtu)
        assert self.forwarder is not None
        self.bridge = IPv6Bridge(
            self.identity,
            self.forwarder,
            self.tun.write,
            self.public_key_for_prefix,
            mtu,
            self.now,
        )
        self.loop.add_reader(self.tun.fileno(), self._tun_readable)
        log.info("TUN %s up: %s/7, MTU %d", self.config.tun_name, self.identity.address, mtu)

    def _tun_readable(self) -> None:
        """Drain up to 64 packets per wake-up into one reused buffer (fair to the links)."""
        tun, bridge = self.tun, self.bridge
        assert tun is not None and bridge is not None
        buffer = self._tun_buffer
        buffer[0] = wire_data.KIND_IPV6  # packets land behind their kind byte: sealed uncopied
        view = memoryview(buffer)
        space = view[1:]
        try:
            for _ in range(64):
                size = tun.read_into(space)
                if size <= 0:
                    break
                bridge.from_tun(view[: 1 + size])
        except TunError as exc:
            self._tun_failed(exc)
        self.peers.flush_links()

    def _tun_failed(self, exc: TunError) -> None:
        """A TUN that cannot be read is gone for good: stop polling it (no busy loop) and close
        it; the node keeps serving the mesh, and IPv6 packets for us count as ``no-tun`` drops."""
        log.error("TUN %s failed, closing it: %s", self.config.tun_name, exc)
        self._close_tun()

    def _close_tun(self) -> None:
        tun, self.tun, self.bridge = self.tun, None, None
        if tun is not None:
            self.loop.remove_reader(tun.fileno())
            tun.close()

    async def stop(self) -> None:
        self.loop_lag.close()
        if self._router_driver is not None:
            self._router_driver.close()
        if self.audit is not None:
            self.audit.close()
        if self.tun is not None:
            self._close_tun()
            log.info("TUN %s removed", self.config.tun_name)
        if self.messages is not None:
            await self.messages.close()
        await self.peers.close()

    # router plumbing --------------------------------------------------------------------------

    def _apply(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, SendControl):
                link = self.peers.links.get(action.peer)
                if link is not None:
                    link.send_frame(FRAME_CONTROL, action.payload)
            elif isinstance(action, NeighbourDead):
                self.peers.close_link(
                    action.peer, "no hello from the peer within the dead interval"
                )

    def _feed_router(self, actions: list[Action]) -> None:
        assert self._router_driver is not None
        self._router_driver.feed(actions)

    # LinkOwner ------------------------------------------------------------------------------

    def link_up(self, link: PeerLink) -> None:
        assert self.router is not None
        self._feed_router(self.router.neighbour_up(link.id, self.now()))

    def link_down(self, link: PeerLink, reason: str) -> None:
        assert self.router is not None
        self._feed_router(self.router.neighbour_down(link.id, self.now()))

    def link_frame(self, link: PeerLink, frame_type: int, body: memoryview) -> None:
        assert self.router is not None and self.forwarder is not None
        self.frames.dispatch(frame_type, (link, body))

    def _data_frame(self, frame: tuple[PeerLink, memoryview]) -> None:
        assert self.forwarder is not None
        self.forwarder.from_peer(frame[0].id, frame[1])

    def _control_frame(self, frame: tuple[PeerLink, memoryview]) -> None:
        assert self.router is not None
        link, body = frame
        try:
            actions = self.router.handle_control(link.id, bytes(body), self.now())
        except DecodeError as exc:
            link.close(f"malformed routing message, dropping the peer: {exc}")
            return
        self._feed_router(actions)

    def _send_data(self, peer: int, packet: bytes | bytearray | memoryview) -> bool:
        link = self.peers.links.get(peer)
        if link is None or not link.send_frame(FRAME_DATA, packet):
            return False
        if link.remote_public_key is not None and self.forwarder is not None:
            self.forwarder.stats.peer(link.remote_public_key).tx.add(len(packet))
        return True

    def _peer_key(self, peer: int) -> bytes | None:
        link = self.peers.links.get(peer)
        return link.remote_public_key if link is not None else None

    # local delivery ---------------------------------------------------------------------------

    def _deliver(self, opened: OpenedPacket) -> None:
        self.kinds.dispatch(opened.kind, opened)

    def _deliver_ipv6(self, opened: OpenedPacket) -> None:
        if self.bridge is not None:
            self.bridge.from_mesh(opened)
        else:
            self.forwarder_stats_drop("no-tun")

    def _deliver_notice(self, opened: OpenedPacket) -> None:
        if self.bridge is not None:
            self.bridge.from_notice(opened)

    def forwarder_stats_drop(self, reason: str) -> None:
        if self.forwarder is not None:
            self.forwarder.stats.drop(reason)

    # services used by the API -----------------------------------------------------------------

    async def ping(
        self,
        dst_public_key: bytes,
        timeout: float = 2.0,  # noqa: ASYNC109
        size: int = 0,
    ) -> PingReply:
        """One end-to-end encrypted echo through the mesh; raises NoRoute or PingFailed."""
        return await self.echo.ping(dst_public_key, timeout, size)

    def message_service(self) -> MessageService:
        assert self.messages is not None, "node not started"
        return self.messages

    def _send_bus_packet(self, dst_public_key: bytes, body: bytes) -> bool:
        assert self.forwarder is not None
        return self.forwarder.send_to(dst_public_key, wire_data.KIND_BUS, body) is None

    def owner_of(self, address: IPv6Address) -> bytes | None:
        """The public key of the node owning an overlay address (ourselves included)."""
        return self.public_key_for_prefix(address.packed[:8])

    def public_key_for_prefix(self, prefix64: bytes) -> bytes | None:
        """The key owning ``prefix64`` (ours included: the router answers for its own prefix)."""
        assert self.router is not None
        return self.router.route_public_key(prefix64)

    def api_bind(self) -> tuple[str, int]:
        return parse_host_port(self.config.api_addr, "api_addr")
