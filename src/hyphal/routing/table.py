"""Route entries: one per (prefix, neighbour), grouped per prefix with the selected one marked.

Memory is what bounds how many prefixes a router can hold (``docs/scaling.md``), so rows are
slotted and share what they can: a signed announcement relayed by several neighbours arrives as
equal bytes from each, and every route carrying it points at one :data:`Announcement` tuple.
The routes are also the signature cache for what they carry (:meth:`PrefixEntry.carried`), so
an announcement is held once, by the routes, and forgotten with the last of them. A route does not
repeat its prefix (its entry holds it) and has no timer of its own (its entry's timer covers
every route of the prefix).
"""

from __future__ import annotations

from hyphal.routing.metric import INFINITY
from hyphal.wire.control import Delegation

#: (router id, seqno, issued, signature, prefix): one origin announcement, as signed and verified.
Announcement = tuple[bytes, int, int, bytes, bytes]


class Route:
    """What neighbour ``peer`` last told us about a prefix (metric excludes our link cost)."""

    __slots__ = ("announcement", "delegation", "expires", "metric", "peer")

    def __init__(
        self,
        peer: int,
        announcement: Announcement,
        metric: int,
        expires: float,
        delegation: Delegation | None,
    ) -> None:
        self.peer = peer
        self.announcement = announcement
        self.metric = metric
        self.expires = expires
        self.delegation = delegation  # verified; re-attached when we relay the route

    @property
    def router_id(self) -> bytes:
        return self.announcement[0]

    @property
    def seqno(self) -> int:
        return self.announcement[1]

    @property
    def issued(self) -> int:
        """The signed freshness of :attr:`signature`."""
        return self.announcement[2]

    @property
    def signature(self) -> bytes:
        return self.announcement[3]


class PrefixEntry:
    """All routes for one /64, the selected one, and what we last advertised for it."""

    __slots__ = (
        "advertised_metric",
        "advertised_peer",
        "demoted",
        "hold_until",
        "last_router_id",
        "last_seqno",
        "lost_peer",
        "lost_reason",
        "owner",
        "prefix",
        "routes",
        "selected",
        "timer",
    )

    def __init__(self, prefix: bytes, owner: int) -> None:
        self.prefix = prefix
        # The neighbour whose update created the entry: it counts against that one's quota.
        self.owner = owner
        self.routes: list[Route] = []  # one per neighbour; a list is a third of a dict's size
        self.selected: Route | None = None
        # When the earliest route expiry is due to be looked at (one timer for all the routes).
        self.timer = float("inf")
        # Next hops demoted by the route audit (peer -> until): skipped while another route works.
        self.demoted: dict[int, float] | None = None
        # Metric of our last triggered/periodic advertisement (INFINITY = retraction / none).
        self.advertised_metric = INFINITY
        # Next hop when we last advertised (split horizon changes when it moves).
        self.advertised_peer: int | None = None
        # While no route is selected: retract until then, then forget.
        self.hold_until = 0.0
        # The next hop of the route last lost (a route found again meanwhile is a failover).
        self.lost_peer: int | None = None
        # A loss not reported yet: a seqno request may find another route within a moment.
        self.lost_reason: str | None = None
        self.last_router_id = b""
        self.last_seqno = 0

    def carried(
        self, router_id: bytes, seqno: int, issued: int, signature: bytes
    ) -> Announcement | None:
        """The announcement with these fields if a route of this prefix carries it: it was
        verified when that route took it, so nothing needs checking again but its freshness."""
        for route in self.routes:
            ann = route.announcement
            if ann[3] == signature and ann[1] == seqno and ann[2] == issued and ann[0] == router_id:
                return ann
        return None

    def route(self, peer: int) -> Route | None:
        """The route through neighbour ``peer``, if it announced one."""
        for route in self.routes:
            if route.peer == peer:
                return route
        return None

    def pop(self, peer: int) -> Route | None:
        """Remove and return the route through ``peer``."""
        routes = self.routes
        for i, route in enumerate(routes):
            if route.peer == peer:
                del routes[i]
                return route
        return None
