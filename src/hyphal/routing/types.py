"""The router's outputs (actions) and read-only views of its state (route and neighbour info)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Network

from hyphal.routing.metric import INFINITY


@dataclass(frozen=True, slots=True)
class SendControl:
    """Send ``payload`` (routing TLVs, the body of a CONTROL frame) to ``peer``."""

    peer: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class NeighbourDead:
    """``peer`` went silent for the dead interval; the link layer should close the link."""

    peer: int


@dataclass(frozen=True, slots=True)
class RouteChange:
    """The selected route to ``prefix64`` changed next hop (only with ``report_routes``).

    ``kind`` is ``reachable`` (a route where there was none), ``lost`` (no route left) or
    ``failover`` (another next hop; also a route found again while the lost one was held).
    ``old_peer``/``new_peer`` are the next hops before and after (None where there is none);
    ``reason`` says why, in words for a log line.
    """

    kind: str
    prefix64: bytes
    public_key: bytes  # the origin's key (of the new route, or of the lost one)
    old_peer: int | None
    new_peer: int | None
    metric: int  # the new route's total metric, INFINITY when lost
    reason: str


Action = SendControl | NeighbourDead | RouteChange


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One route: ``metric`` is the total (advertised + link cost), INFINITY when retracted."""

    prefix64: bytes
    next_hop: int
    metric: int
    seqno: int
    router_id: bytes
    selected: bool
    advertised_metric: int = INFINITY

    @property
    def public_key(self) -> bytes:
        return self.router_id[:32]

    @property
    def subnet(self) -> IPv6Network:
        return IPv6Network((self.prefix64 + bytes(8), 64))


@dataclass(frozen=True, slots=True)
class NeighbourInfo:
    """A neighbour as the router sees it; ``alive`` means it has an RTT sample (usable)."""

    peer: int
    rtt: float | None
    link_cost: int
    last_heard: float
    alive: bool
