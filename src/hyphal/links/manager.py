"""The peer manager: dials static peers (with backoff), accepts inbound links, dedupes links.

It owns every PeerLink and tells the node about usable links through `LinkOwner`. Two links to the
same node (both sides dialing each other, or two endpoints of one node) are reduced to one by a
rule both ends agree on: keep the link whose initiator has the smaller public key.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from hyphal.crypto.handshake import LinkHandshake
from hyphal.identity import NodeIdentity
from hyphal.links.backoff import Backoff
from hyphal.links.budget import HandshakeBudget
from hyphal.links.capabilities import FEATURE_CLIENT, LOCAL_FEATURES, encode_capabilities
from hyphal.links.connection import PeerLink
from hyphal.links.endpoint import Endpoint
from hyphal.links.linklog import LinkLog
from hyphal.links.tcp import TcpTransport
from hyphal.links.transport import LinkTransport, Listener

log = logging.getLogger("hyphal.links")

CONNECT_TIMEOUT = 10.0
STABLE_LINK_SECONDS = 10.0
MAX_INBOUND_HANDSHAKES = 64
MAX_HANDSHAKES_PER_SOURCE = 8
MAX_LINKS = 256
# Failures no retry fixes until someone changes a config: dial them back to this cap.
MISCONFIGURED_BACKOFF_CAP = 300.0
MISCONFIGURED = frozenset(
    {"wrong-network-key", "network-mismatch", "version", "bad-magic", "pinned-key"}
)


class LinkOwner(Protocol):
    """What the node does with usable links."""

    def link_up(self, link: PeerLink) -> None: ...
    def link_frame(self, link: PeerLink, frame_type: int, body: memoryview) -> None: ...
    def link_down(self, link: PeerLink, reason: str) -> None: ...


class PeerExistsError(ValueError):
    pass


class PeerNotFoundError(KeyError):
    pass


class PeerState(StrEnum):
    """A static peer's connection state (the values are the API's)."""

    CONNECTING = "connecting"
    ALIVE = "alive"
    DEAD = "dead"


class LinkKind(StrEnum):
    """How a link came about: we dialed a static peer, or a peer dialed us."""

    STATIC = "static"
    INBOUND = "inbound"


@dataclass(frozen=True)
class PeerInfo:
    """A typed snapshot of one peer for the API layer to render."""

    proto: str
    socket_addr: str
    kind: LinkKind
    state: PeerState
    tx_bytes: int
    rx_bytes: int
    link: PeerLink | None  # the established link, if any
    discovered_seconds: int | None = None  # static peers only
    last_connected_seconds: int | None = None
    last_error: str | None = None


@dataclass
class StaticPeer:
    """A peer we dial and keep dialing: from --peers, the config file or the API."""

    endpoint: Endpoint
    state: PeerState = PeerState.CONNECTING
    link: PeerLink | None = None
    remote_public_key: bytes | None = None
    discovered: float = field(default_factory=time.time)
    last_connected: float | None = None
    last_error: str = ""
    gave_up: bool = False  # the endpoint is this node itself: no more dialing
    task: asyncio.Task[None] | None = None
    backoff: Backoff = field(default_factory=Backoff)
    tx_bytes: int = 0
    rx_bytes: int = 0


class PeerManager:
    """Dials, accepts and supervises links; only established, deduplicated links reach the owner."""

    def __init__(
        self,
        identity: NodeIdentity,
        owner: LinkOwner,
        *,
        network_name: str | None,
        network_key: bytes | None,
        features: int = LOCAL_FEATURES,
        max_inbound_handshakes: int = MAX_INBOUND_HANDSHAKES,
        max_handshakes_per_source: int = MAX_HANDSHAKES_PER_SOURCE,
        max_links: int = MAX_LINKS,
        handshake_budget: HandshakeBudget | None = None,
        transport: LinkTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        misconfigured_backoff_cap: float = MISCONFIGURED_BACKOFF_CAP,
    ) -> None:
        self.identity = identity
        self.owner = owner
        self.network_name = network_name
        self.network_key = network_key
        self.local_payload = encode_capabilities(features)
        self.max_inbound_handshakes = max_inbound_handshakes
        self.max_handshakes_per_source = max_handshakes_per_source
        self.max_links = max_links
        self.handshake_budget = handshake_budget or HandshakeBudget(clock)
        self.misconfigured_backoff_cap = misconfigured_backoff_cap
        self.linklog = LinkLog(clock)  # failures logged once, then summarised
        self.failures = self.linklog.failures
        self.transport: LinkTransport = transport or TcpTransport()
        self.refused_inbound = 0
        self.dial_errors = 0
        self.backlog_closes = 0
        self.static: dict[Endpoint, StaticPeer] = {}
        self.links: dict[int, PeerLink] = {}
        self.by_key: dict[bytes, PeerLink] = {}
        self.all_links: set[PeerLink] = set()
        self._ids = itertools.count(1)
        self._server: Listener | None = None
        self.listen_port = 0
        self._closing = False
        self._dirty: list[PeerLink] = []
        self._flush_scheduled = False
        self._closed_waiters: dict[PeerLink, asyncio.Future[None]] = {}

    # lifecycle --------------------------------------------------------------------------------

    async def start(
        self,
        listen_address: str,
        port: int,
        peers: tuple[Endpoint, ...],
        *,
        listen: bool = True,
    ) -> None:
        """Listen (unless ``listen`` is False: a dial-out-only node) and dial ``peers``."""
        if listen:
            self._server = await self.transport.listen(
                listen_address,
                port,
                lambda: self._new_link(initiator=False, endpoint=None, kind=LinkKind.INBOUND),
            )
            self.listen_port = self._server.port
            bound: tuple[str, ...] = getattr(self._server, "addresses", ())
            shown = f"{listen_address or '::'} port {self.listen_port}"
            log.info("listening for peers on %s", ", ".join(bound) if bound else shown)
        else:
            log.info("not listening for peers: this node only dials out")
        for endpoint in peers:
            with contextlib.suppress(PeerExistsError):
                self.add_static(endpoint)

    async def close(self) -> None:
        self._closing = True
        for peer in self.static.values():
            if peer.task is not None:
                peer.task.cancel()
        closing = list(self.all_links)
        for link in closing:
            link.close("node shutting down")
        self.linklog.shutdown(sum(1 for link in closing if link.established))
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        tasks = [p.task for p in self.static.values() if p.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # static peers -----------------------------------------------------------------------------

    def add_static(self, endpoint: Endpoint) -> StaticPeer:
        if endpoint in self.static:
            raise PeerExistsError(f"peer {endpoint} is already known")
        peer = StaticPeer(endpoint=endpoint)
        self.static[endpoint] = peer
        peer.task = asyncio.get_running_loop().create_task(self._dial_loop(peer))
        log.info("added static peer %s", endpoint)
        return peer

    def remove_static(self, endpoint: Endpoint) -> None:
        """Stop dialing ``endpoint`` (a pinned key in it does not matter: same address, same
        peer)."""
        peer = self.static.pop(endpoint, None)
        if peer is None:
            raise PeerNotFoundError(str(endpoint))
        if peer.task is not None:
            peer.task.cancel()
        if peer.link is not None:
            peer.link.close("peer removed by the operator")
        log.info("removed static peer %s", endpoint)

    async def _dial_loop(self, peer: StaticPeer) -> None:
        loop = asyncio.get_running_loop()
        # Still in `static` is checked as well as the cancel in remove_static: a cancel that
        # lands as the dial itself finishes can be lost, and the loop must end anyway.
        while not self._closing and not peer.gave_up and self.static.get(peer.endpoint) is peer:
            # A live link to the same node (e.g. it dialed us) makes a second one pointless.
            known = peer.remote_public_key
            if (
                known is not None
                and known in self.by_key
                and self.by_key[known].endpoint != peer.endpoint
            ):
                peer.state = PeerState.ALIVE
                await asyncio.sleep(1.0)
                continue
            peer.state = PeerState.CONNECTING
            log.debug("dialing %s", peer.endpoint)
            link = self._new_link(initiator=True, endpoint=peer.endpoint, kind=LinkKind.STATIC)
            done: asyncio.Future[None] = loop.create_future()
            peer.link = link
            self._closed_waiters[link] = done
            started = time.monotonic()
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await self.transport.dial(peer.endpoint.host, peer.endpoint.port, link)
                await done
            except asyncio.CancelledError:
                link.close("dial cancelled")
                raise
            except (OSError, TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
                self.linklog.dial_failed(peer.endpoint, reason)
                peer.last_error = reason
            except Exception as exc:  # a bug or an odd resolver error must not end the dialing
                self.dial_errors += 1
                log.exception("dialing %s failed unexpectedly (will retry)", peer.endpoint)
                peer.last_error = f"{type(exc).__name__}: {exc}"
                link.close("dial failed")
            finally:
                if not link.connected:  # never reached connection_made: nothing will report it
                    self.all_links.discard(link)
                self._closed_waiters.pop(link, None)
                peer.tx_bytes += link.tx_bytes
                peer.rx_bytes += link.rx_bytes
                if link.remote_public_key is not None and link.handshake_failure is None:
                    peer.remote_public_key = link.remote_public_key
            peer.link = None
            peer.state = PeerState.DEAD
            failure = link.handshake_failure
            if link.connected and link.close_reason and not link.close_reason.startswith("dup"):
                peer.last_error = link.close_reason
            if failure == "self-connection":
                peer.gave_up = True
                self.linklog.self_peer(peer.endpoint)
                return
            if failure in MISCONFIGURED:
                peer.backoff.slow_cap = self.misconfigured_backoff_cap
            if link.established and time.monotonic() - started > STABLE_LINK_SECONDS:
                peer.backoff.reset()
            if link.established and link.close_reason.startswith("duplicate"):
                continue
            await asyncio.sleep(peer.backoff.next_delay())

    # links ----------------------------------------------------------------------------------

    def _new_link(self, *, initiator: bool, endpoint: Endpoint | None, kind: LinkKind) -> PeerLink:
        handshake = LinkHandshake(
            self.identity,
            initiator=initiator,
            network_name=self.network_name,
            network_key=self.network_key,
            local_payload=self.local_payload,
        )
        link = PeerLink(
            next(self._ids), self, handshake, initiator=initiator, endpoint=endpoint, kind=kind
        )
        self.all_links.add(link)
        return link

    def admit_inbound(self, link: PeerLink, host: str) -> str | None:
        """Why a fresh inbound connection from `host` must be refused, or None to admit it.

        Counts only inbound links still handshaking (globally and per source address) and the
        established links against `max_links`, then spends from the handshake budget (X25519
        work per source and globally); the refused socket is aborted by the link.
        """
        if len(self.links) >= self.max_links:
            reason = f"too many established links ({self.max_links})"
        else:
            pending = [
                lk.remote_host
                for lk in self.all_links
                if lk is not link and not lk.initiator and not lk.established and not lk.closed
            ]
            if len(pending) >= self.max_inbound_handshakes:
                reason = f"too many inbound handshakes in progress ({self.max_inbound_handshakes})"
            elif pending.count(host) >= self.max_handshakes_per_source:
                reason = f"too many handshakes in progress from {host}"
            else:
                refusal = self.handshake_budget.admit(host)
                if refusal is None:
                    log.debug("inbound connection %d from %s admitted", link.id, host)
                    return None
                reason = refusal
        self.refused_inbound += 1
        if self.refused_inbound & (self.refused_inbound - 1) == 0:  # 1st, 2nd, 4th, 8th, ...
            log.warning(
                "refusing inbound connection: %s (%d refused so far)", reason, self.refused_inbound
            )
        return reason

    def _initiator_key(self, link: PeerLink) -> bytes:
        assert link.remote_public_key is not None
        return self.identity.public_key if link.initiator else link.remote_public_key

    def link_established(self, link: PeerLink) -> None:
        key = link.remote_public_key
        assert key is not None
        pin = link.endpoint.key if link.endpoint is not None else None
        if pin is not None and key != pin:
            link.handshake_failure = "pinned-key"
            link.close(
                f"refused: the node there presents key {key.hex()[:16]}…, "
                f"but this peer is pinned to {pin.hex()[:16]}…"
            )
            return
        existing = self.by_key.get(key)
        if existing is not None:
            # Both ends see the same initiator keys, so they close the same link; on a tie (one
            # node dialed twice) the link that completed first wins, on both ends alike.
            if not self._initiator_key(link) < self._initiator_key(existing):
                link.close("duplicate link to the same node (keeping the existing one)")
                return
            existing.close("duplicate link to the same node (keeping the new one)")
        elif not link.initiator and len(self.links) >= self.max_links:
            # admit_inbound checked at accept time; handshakes that finish together recheck here
            self.refused_inbound += 1
            link.close(f"too many established links ({self.max_links})")
            return
        self.by_key[key] = link
        self.links[link.id] = link
        if link.endpoint is not None and link.endpoint in self.static:
            peer = self.static[link.endpoint]
            peer.state = PeerState.ALIVE
            peer.remote_public_key = key
            peer.last_connected = time.time()
            peer.last_error = ""
            peer.backoff.slow_cap = None
            self.linklog.connected(link.endpoint)
        elif not link.initiator:
            self.linklog.accepted(link.remote_host)
        log.info(
            "link %d up: %s %s (%s)%s",
            link.id,
            link.kind,
            link.remote_address,
            key.hex()[:16] + "…",
            ", a client: it is never a transit hop" if link.features & FEATURE_CLIENT else "",
        )
        self.owner.link_up(link)

    def link_frame(self, link: PeerLink, frame_type: int, body: memoryview) -> None:
        self.owner.link_frame(link, frame_type, body)

    def link_has_output(self, link: PeerLink) -> None:
        """A link staged its first frame since its last flush: flush it soon."""
        self._dirty.append(link)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush_links)

    def flush_links(self) -> None:
        """Write out every link with staged frames (called at the end of each batch of work)."""
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        for link in dirty:
            link.flush()

    def link_closed(self, link: PeerLink, reason: str) -> None:
        self.all_links.discard(link)
        self.linklog.closed(link, reason, was_up=link.id in self.links, closing=self._closing)
        if link.backlog_overflowed:
            self.backlog_closes += 1
        if self.links.pop(link.id, None) is not None:
            if (
                link.remote_public_key is not None
                and self.by_key.get(link.remote_public_key) is link
            ):
                del self.by_key[link.remote_public_key]
            self.owner.link_down(link, reason)
        waiter = self._closed_waiters.get(link)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close_link(self, link_id: int, reason: str) -> None:
        link = self.links.get(link_id)
        if link is not None:
            link.close(reason)

    # reporting --------------------------------------------------------------------------------

    def peer_infos(self) -> list[PeerInfo]:
        """Every static peer, then every inbound link that is not one of theirs."""
        now = time.time()
        infos: list[PeerInfo] = []
        for peer in self.static.values():
            # a link refused after its handshake (a pinned key) is established but closing
            dialed = peer.link
            link = (
                dialed if dialed is not None and dialed.established and not dialed.closed else None
            )
            if link is None and peer.remote_public_key in self.by_key and not peer.gave_up:
                link = self.by_key[peer.remote_public_key]  # connected the other way round
            infos.append(
                PeerInfo(
                    proto=peer.endpoint.proto,
                    socket_addr=peer.endpoint.socket_addr,
                    kind=LinkKind.STATIC,
                    state=PeerState.ALIVE if link is not None else peer.state,
                    tx_bytes=peer.tx_bytes + (link.tx_bytes if link else 0),
                    rx_bytes=peer.rx_bytes + (link.rx_bytes if link else 0),
                    link=link,
                    discovered_seconds=int(now - peer.discovered),
                    last_connected_seconds=int(now - peer.last_connected)
                    if peer.last_connected
                    else None,
                    last_error=peer.last_error or None,
                )
            )
        static_links = {p.link for p in self.static.values()} | {
            self.by_key.get(p.remote_public_key)
            for p in self.static.values()
            if p.remote_public_key
        }
        for link in self.links.values():
            if link.kind != LinkKind.INBOUND or link in static_links:
                continue
            infos.append(
                PeerInfo(
                    proto="tcp",
                    socket_addr=link.remote_address,
                    kind=LinkKind.INBOUND,
                    state=PeerState.ALIVE,
                    tx_bytes=link.tx_bytes,
                    rx_bytes=link.rx_bytes,
                    link=link,
                )
            )
        return infos
