"""Route entries: one per (prefix, neighbour), grouped per prefix with the selected one marked."""

from __future__ import annotations

from hyphal.routing.metric import INFINITY
from hyphal.wire.control import Delegation


class Route:
    """What neighbour ``peer`` last told us about ``prefix`` (metric excludes our link cost)."""

    __slots__ = (
        "delegation",
        "expires",
        "interval",
        "issued",
        "metric",
        "peer",
        "prefix",
        "router_id",
        "seqno",
        "signature",
    )

    def __init__(
        self,
        prefix: bytes,
        peer: int,
        router_id: bytes,
        seqno: int,
        metric: int,
        signature: bytes,
        interval: int,
        expires: float,
        issued: int,
        delegation: Delegation | None,
    ) -> None:
        self.prefix = prefix
        self.peer = peer
        self.router_id = router_id
        self.seqno = seqno
        self.metric = metric
        self.signature = signature
        self.interval = interval
        self.expires = expires
        self.issued = issued  # the signed freshness of ``signature``
        self.delegation = delegation  # verified; re-attached when we relay the route


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
    )

    def __init__(self, prefix: bytes, owner: int) -> None:
        self.prefix = prefix
        # The neighbour whose update created the entry: it counts against that one's quota.
        self.owner = owner
        self.routes: dict[int, Route] = {}
        self.selected: Route | None = None
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
