"""Routing events for people: the router's RouteChange actions, named, logged and fanned out.

The router speaks in peer ids and prefixes; this adapter turns each change into a
:class:`RouteEvent` that names the node (overlay address and key) and the next hops (the
neighbour's key and link address), logs it once at INFO on ``hyphal.routing``, and hands it to
every subscriber (the recent-events ring of ``hyphal status``, a dashboard). Debug lines for the
router's other actions live here too, so the core stays free of logging.

Names of next hops are remembered while their link is up (``peer_up``) and, for the last
MAX_GONE closed links, afterwards: a failover found by a seqno request is reported a moment
after the old link closed, and its line must still say which link went.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from hyphal.identity import address_for_public_key
from hyphal.routing.types import RouteChange

log = logging.getLogger("hyphal.routing")

MAX_SUBSCRIBERS = 16
MAX_GONE = 256  # names of closed links kept for late reports (peer ids are never reused)


@dataclass(frozen=True, slots=True)
class RouteEvent:
    """A routing event as people read it."""

    kind: str  # "reachable", "lost" or "failover"
    public_key: str  # hex key of the node the route reaches
    address: str  # its overlay address
    old_hop: str | None  # "key16… at addr" of the next hop before, if there was one
    new_hop: str | None  # and after
    metric: int | None  # new total metric; None when lost
    reason: str
    at: float  # wall-clock time

    def fields(self) -> dict[str, object]:
        """The event as JSON log fields (camelCase, as the API)."""
        return {
            "event": f"route-{self.kind}",
            "node": self.public_key,
            "address": self.address,
            "oldNextHop": self.old_hop,
            "newNextHop": self.new_hop,
            "metric": self.metric,
            "reason": self.reason,
        }

    def line(self) -> str:
        who = f"node {self.address} ({self.public_key[:16]}…)"
        if self.kind == "reachable":
            return f"{who} reachable via {self.new_hop}, metric {self.metric} ({self.reason})"
        if self.kind == "lost":
            return f"{who} unreachable: was via {self.old_hop}; {self.reason}"
        return (
            f"failover for {who}: next hop {self.old_hop} -> {self.new_hop}, "
            f"metric {self.metric}: {self.reason}"
        )


class RouteLog:
    """Names and logs route changes; subscribers get every event (``subscribe``)."""

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self._wall = wall_clock
        self._names: dict[int, str] = {}
        self._gone: OrderedDict[int, str] = OrderedDict()
        self._subscribers: list[Callable[[RouteEvent], None]] = []
        self.muted = False  # set while the node shuts down: every route goes, none is news
        self.events = 0

    def subscribe(self, subscriber: Callable[[RouteEvent], None]) -> None:
        if len(self._subscribers) >= MAX_SUBSCRIBERS:
            raise ValueError(f"at most {MAX_SUBSCRIBERS} route event subscribers")
        self._subscribers.append(subscriber)

    def peer_up(self, peer: int, public_key: bytes | None, address: str) -> None:
        key = public_key.hex()[:16] + "…" if public_key is not None else "?"
        self._names[peer] = f"{key} at {address}" if address else key

    def peer_gone(self, peer: int) -> None:
        """The link is closed and the router told: keep its name a while for late reports."""
        name = self._names.pop(peer, None)
        if name is not None:
            self._gone[peer] = name
            while len(self._gone) > MAX_GONE:
                self._gone.popitem(last=False)

    def name(self, peer: int | None) -> str | None:
        if peer is None:
            return None
        name = self._names.get(peer) or self._gone.get(peer)
        return name if name is not None else f"link {peer}"

    def apply(self, change: RouteChange) -> RouteEvent | None:
        """Log one change and hand it to the subscribers (nothing while muted)."""
        if self.muted:
            return None
        event = RouteEvent(
            change.kind,
            change.public_key.hex(),
            str(address_for_public_key(change.public_key)),
            self.name(change.old_peer),
            self.name(change.new_peer),
            None if change.kind == "lost" else change.metric,
            change.reason,
            self._wall(),
        )
        self.events += 1
        log.info("%s", event.line(), extra={"fields": event.fields()})
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:  # one broken listener must not stop routing's log
                log.exception("route event subscriber failed")
        return event
