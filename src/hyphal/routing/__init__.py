"""Babel-style routing: a sans-IO router and the parameters it shares with the simulator."""

from hyphal.routing.metric import INFINITY
from hyphal.routing.params import DEFAULT_PARAMS, RoutingParams
from hyphal.routing.router import Router
from hyphal.routing.types import Action, NeighbourDead, NeighbourInfo, RouteInfo, SendControl

__all__ = [
    "DEFAULT_PARAMS",
    "INFINITY",
    "Action",
    "NeighbourDead",
    "NeighbourInfo",
    "RouteInfo",
    "Router",
    "RoutingParams",
    "SendControl",
]
