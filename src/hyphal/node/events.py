"""What the node remembers about recent events, for `hyphal status`: link uptimes and failovers.

A failover is a change of the selected next hop for a destination /64 (or its loss). The router
has no output for it, so :class:`RouteChangeWatch` derives it where the node applies the
router's actions: the router's counters ``route_switches`` and ``routes_lost`` move exactly when a
selected route changes, so the check is O(1) until one does, and only then is the forwarding
table diffed against the copy taken last time. Changes go into a small bounded ring
(:class:`RecentFailovers`); the labels of the next hops (key, address) are kept per link id from
``link_up`` until the link's ``link_down`` has been processed, so a hop that just went away is
still named.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

RING_SIZE = 32


@dataclass(frozen=True)
class HopLabel:
    """Who a next hop (a link id) was: the peer's public key and remote address."""

    link_id: int
    public_key: bytes | None
    remote_address: str


@dataclass(frozen=True)
class Failover:
    """The selected next hop for ``prefix64`` changed from ``old`` to ``new`` (None: no route)."""

    at: float  # wall-clock seconds
    prefix64: bytes
    destination_key: bytes | None
    old: HopLabel | None
    new: HopLabel | None
    reason: str


class RecentFailovers:
    """A bounded ring of the most recent failovers, oldest first."""

    def __init__(self, size: int = RING_SIZE) -> None:
        self._ring: deque[Failover] = deque(maxlen=size)
        self.total = 0

    def record(self, event: Failover) -> None:
        self._ring.append(event)
        self.total += 1

    def snapshot(self) -> list[Failover]:
        return list(self._ring)


class WatchedRouter(Protocol):
    counters: dict[str, int]

    def forwarding_table(self) -> Mapping[bytes, int]: ...

    def route_public_key(self, prefix64: bytes) -> bytes | None: ...


class RouteChangeWatch:
    """Derives failovers from the router's forwarding table and keeps per-link labels and uptimes."""

    def __init__(
        self, router: WatchedRouter, wall_clock: Callable[[], float], size: int = RING_SIZE
    ) -> None:
        self._router = router
        self._clock = wall_clock
        self.failovers = RecentFailovers(size)
        self._seen = self._marks()
        self._fib: dict[bytes, int] = dict(router.forwarding_table())
        self._labels: dict[int, HopLabel] = {}
        self._up_since: dict[int, float] = {}
        self._gone: dict[int, str] = {}  # links that went down in this batch, with the reason
        self._keys: dict[bytes, bytes] = {}  # prefix -> destination key, as last seen

    def _marks(self) -> tuple[int, int]:
        c = self._router.counters
        return c.get("route_switches", 0), c.get("routes_lost", 0)

    def link_up(self, link_id: int, public_key: bytes | None, remote_address: str) -> None:
        self._labels[link_id] = HopLabel(link_id, public_key, remote_address)
        self._up_since[link_id] = self._clock()

    def link_down(self, link_id: int, reason: str) -> None:
        """Call after the router has processed the link's loss."""
        self._gone[link_id] = reason
        self.check()
        self._gone.pop(link_id, None)
        self._labels.pop(link_id, None)
        self._up_since.pop(link_id, None)

    def up_since(self, link_id: int) -> float | None:
        """When the link with this id was established (wall clock), if it is up."""
        return self._up_since.get(link_id)

    def check(self) -> None:
        """Record every selected-route change since the last check (O(1) if there was none)."""
        fib = self._router.forwarding_table()
        marks = self._marks()
        if marks == self._seen:
            if len(fib) != len(self._fib):  # routes only appeared or went quietly: resync
                self._resync(fib)
            return
        self._seen = marks
        now = self._clock()
        for prefix, old_hop in self._fib.items():
            new_hop = fib.get(prefix)
            if new_hop == old_hop:
                continue
            key = self._router.route_public_key(prefix) or self._keys.get(prefix)
            self.failovers.record(
                Failover(
                    now,
                    prefix,
                    key,
                    self._labels.get(old_hop),
                    None if new_hop is None else self._labels.get(new_hop),
                    self._reason(old_hop, new_hop),
                )
            )
        self._resync(fib)

    def _resync(self, fib: Mapping[bytes, int]) -> None:
        self._fib = dict(fib)
        keys = self._keys
        for prefix in fib:
            if prefix not in keys:
                key = self._router.route_public_key(prefix)
                if key is not None:
                    keys[prefix] = key
        for prefix in [p for p in keys if p not in fib]:
            del keys[prefix]

    def _reason(self, old_hop: int, new_hop: int | None) -> str:
        gone = self._gone.get(old_hop)
        if gone is not None:
            why = f"link to the old next hop closed: {gone}"
        elif old_hop not in self._labels:
            why = "the old next hop is gone"
        else:
            why = "a better route" if new_hop is not None else "the route was retracted"
        return why if new_hop is not None else f"no route left ({why})"


def hop_text(label: HopLabel | None) -> str:
    """A next hop for people: ``<key prefix> at <address>``, or ``-`` for none."""
    if label is None:
        return "-"
    key = label.public_key.hex()[:16] if label.public_key else "?"
    return f"{key} at {label.remote_address}"


__all__ = [
    "Failover",
    "HopLabel",
    "RecentFailovers",
    "RouteChangeWatch",
    "hop_text",
]
