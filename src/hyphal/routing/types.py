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


Action = SendControl | NeighbourDead


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
