"""A read-only view of a running node, and the narrow interface the API layer is given.

Admin, metrics (and the dashboard to come) read typed snapshots from :class:`NodeView` instead
of reaching into the router, the peer manager, the forwarder or the TUN; the few operations
they need are in :class:`NodeApi`. Snapshots are taken at call time and never change afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from typing import Any, Protocol

from hyphal import __version__
from hyphal.bus.service import MessageService
from hyphal.config import NodeConfig
from hyphal.dataplane.echo import PingReply
from hyphal.dataplane.stats import DataplaneStats
from hyphal.identity import NodeIdentity
from hyphal.links.connection import PeerLink
from hyphal.links.endpoint import Endpoint
from hyphal.links.manager import PeerInfo, PeerManager
from hyphal.node.events import LinkUptimes, RecentRouteEvents
from hyphal.node.lag import LagMonitor
from hyphal.node.parts import Parts
from hyphal.node.routelog import RouteEvent
from hyphal.routing.router import Router
from hyphal.routing.types import NeighbourInfo, RouteInfo


@dataclass(frozen=True)
class IdentityInfo:
    subnet: IPv6Network
    address: IPv6Address
    public_key: bytes
    started_at: float  # wall-clock seconds


@dataclass(frozen=True)
class SelfInfo:
    """What `hyphal status` says about this node beyond its identity."""

    name: str | None  # None: our record carries no name
    role: str
    version: str
    network_name: str | None  # None: the public network
    listen_address: str
    listen_port: int  # 0: not listening for peers (a client dials out only)
    api_addr: str
    metrics_addr: str | None


@dataclass(frozen=True)
class LinkInfo:
    """One live link: its id (the router's neighbour id), peer and byte counts."""

    id: int
    public_key: bytes | None
    remote_address: str
    tx_bytes: int
    rx_bytes: int
    dropped_frames: int

    @classmethod
    def of(cls, link: PeerLink) -> LinkInfo:
        return cls(
            link.id,
            link.remote_public_key,
            link.remote_address,
            link.tx_bytes,
            link.rx_bytes,
            link.dropped_frames,
        )


@dataclass(frozen=True)
class RouteView:
    """A route and the live link it goes through (None once that link has gone)."""

    route: RouteInfo
    next_hop: LinkInfo | None


@dataclass(frozen=True)
class TrafficCount:
    packets: int
    bytes: int


@dataclass(frozen=True)
class Traffic:
    """Data-plane totals: local and relayed traffic, drops by reason."""

    local_tx: TrafficCount
    local_rx: TrafficCount
    forwarded: TrafficCount
    drops: dict[str, int]


@dataclass(frozen=True)
class PacketStats:
    """The packet statistics report, plus the drops below the forwarder."""

    report: dict[str, object]
    tun_write_drops: int
    link_dropped_frames: int


@dataclass(frozen=True)
class BusInfo:
    memory: dict[str, int]
    stats: dict[str, int]


class MemberDirectory(Protocol):
    """What the view needs from the membership part: names, counts and counters."""

    def own_name(self) -> str | None: ...

    def name_of(self, public_key: bytes) -> str | None: ...

    def reachable_counts(self) -> tuple[int, int]: ...

    def counters(self) -> dict[str, int]: ...


class _NoMembers:
    def own_name(self) -> str | None:
        return None

    def name_of(self, public_key: bytes) -> str | None:
        return None

    def reachable_counts(self) -> tuple[int, int]:
        return 0, 0

    def counters(self) -> dict[str, int]:
        return {}


class NodeView:
    """Typed, read-only snapshots of one node's state."""

    def __init__(
        self,
        identity: NodeIdentity,
        started_at: float,
        peers: PeerManager,
        router: Router,
        stats: DataplaneStats,
        tun_write_drops: Callable[[], int],
        loop_lag: LagMonitor,
        messages: MessageService,
        *,
        config: NodeConfig | None = None,
        route_events: RecentRouteEvents | None = None,
        uptimes: LinkUptimes | None = None,
        listen_port: Callable[[], int] = lambda: 0,
        members: MemberDirectory | None = None,
        parts: Parts | None = None,
    ) -> None:
        self._members: MemberDirectory = members or _NoMembers()
        self._parts = parts or Parts()
        self._config = config or NodeConfig()
        self._route_events = route_events or RecentRouteEvents()
        self._uptimes = uptimes or LinkUptimes()
        self._listen_port = listen_port
        self._identity = identity
        self._started_at = started_at
        self._peers = peers
        self._router = router
        self._stats = stats
        self._tun_write_drops = tun_write_drops
        self._loop_lag = loop_lag
        self._messages = messages

    def identity(self) -> IdentityInfo:
        i = self._identity
        return IdentityInfo(i.subnet, i.address, i.public_key, self._started_at)

    def self_info(self) -> SelfInfo:
        c = self._config
        return SelfInfo(
            name=self._members.own_name(),
            role=c.node_role.value,
            version=__version__,
            network_name=c.network_name,
            listen_address=c.listen_address,
            listen_port=(self._listen_port() or c.tcp_listen_port) if c.listens else 0,
            api_addr=c.api_addr,
            metrics_addr=c.metrics_api_address,
        )

    def member_name(self, public_key: bytes | None) -> str | None:
        """The member name ``public_key`` owns, if any (for peers and routes tables)."""
        return None if public_key is None else self._members.name_of(public_key)

    def member_counts(self) -> tuple[int, int]:
        """(reachable, unreachable) members, ourselves included."""
        return self._members.reachable_counts()

    def membership_counters(self) -> dict[str, int]:
        """The membership core's and store's event counters (accepted, bad-signature, ...)."""
        return dict(self._members.counters())

    def recent_failovers(self) -> list[RouteEvent]:
        """The most recent route losses and failovers (bounded ring), oldest first."""
        return self._route_events.snapshot()

    def failover_total(self) -> int:
        return self._route_events.total

    def link_up_since(self, link_id: int) -> float | None:
        """When the link with this id was established (wall clock), if known."""
        return self._uptimes.since(link_id)

    def peers(self) -> list[PeerInfo]:
        return self._peers.peer_infos()

    def static_peer_count(self) -> int:
        return len(self._peers.static)

    def links(self) -> list[LinkInfo]:
        return [LinkInfo.of(link) for link in self._peers.links.values()]

    def neighbours(self) -> list[NeighbourInfo]:
        return self._router.neighbours()

    def selected_routes(self) -> list[RouteView]:
        return self._route_views(self._router.selected_routes())

    def fallback_routes(self) -> list[RouteView]:
        return self._route_views(self._router.fallback_routes())

    def _route_views(self, routes: list[RouteInfo]) -> list[RouteView]:
        links = self._peers.links
        return [
            RouteView(r, LinkInfo.of(links[r.next_hop]) if r.next_hop in links else None)
            for r in routes
        ]

    def router_counters(self) -> dict[str, int]:
        return dict(self._router.counters)

    def packet_stats(self) -> PacketStats:
        return PacketStats(
            self._stats.report(),
            self._tun_write_drops(),
            sum(link.dropped_frames for link in self._peers.links.values()),
        )

    def traffic(self) -> Traffic:
        s = self._stats
        return Traffic(
            TrafficCount(s.local_tx.packets, s.local_tx.bytes),
            TrafficCount(s.local_rx.packets, s.local_rx.bytes),
            TrafficCount(s.forwarded.packets, s.forwarded.bytes),
            dict(s.drops),
        )

    def loop_lag(self) -> float:
        """The largest event-loop lag over the last minute, in seconds."""
        return self._loop_lag.max_lag()

    def loop_lag_histogram(self) -> tuple[list[tuple[str, int]], float]:
        """Every event-loop lag sample since the start: cumulative bucket counts and their sum."""
        return self._loop_lag.histogram()

    def part_status(self, name: str) -> dict[str, Any] | None:
        """A node part's status snapshot (e.g. ``dns``), or None when the part is off."""
        part = self._parts.get(name)
        return None if part is None else part.status()

    def part_counters(self) -> dict[str, dict[str, int]]:
        """Every part's counters, by part name."""
        return self._parts.counters()

    def bus(self) -> BusInfo:
        core = self._messages.core
        return BusInfo(dict(core.memory_usage()), dict(core.stats))


class ViewSource(Protocol):
    """Anything that shows a :class:`NodeView` (what the metrics endpoint needs)."""

    @property
    def view(self) -> NodeView: ...


class NodeApi(ViewSource, Protocol):
    """The view plus the few operations the local API performs on a node."""

    def add_static(self, endpoint: Endpoint) -> None:
        """Dial and keep dialing ``endpoint``; PeerExistsError if it is already configured."""
        ...

    def remove_static(self, endpoint: Endpoint) -> None:
        """Stop dialing ``endpoint`` and close its link; PeerNotFoundError if unknown."""
        ...

    async def ping(
        self,
        dst_public_key: bytes,
        timeout: float = 2.0,  # noqa: ASYNC109
        size: int = 0,
    ) -> PingReply: ...

    def owner_of(self, address: IPv6Address) -> bytes | None: ...

    def key_for_name(self, name: str) -> bytes | None:
        """The public key of the member owning ``name`` (None: no member does)."""
        ...

    def message_service(self) -> MessageService: ...
