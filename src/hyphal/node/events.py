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
RESTORE_WINDOW = 60.0  # a route back within this long after its loss is a failover, not news


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
        # Routes lost recently: prefix -> (when, old hop, why). Bounded by the table's size.
        self._lost: dict[bytes, tuple[float, HopLabel | None, str]] = {}

    def _marks(self) -> tuple[int, int]:
        c = self._router.counters
        return c.get("route_switches", 0), c.get("routes_lost", 0)

    def link_up(self, link_id: int, public_key: bytes | None, remote_address: str) -> None:
        self._labels[link_id] = HopLabel(link_id, public_key, remote_address)
        self._up_since[link_id] = self._clock()

    def link_down(self, link_id: int, reason: str) -> None:
        """Call before the router processes the link's loss (so changes name the reason)."""
        self._gone[link_id] = reason

    def forget(self, link_id: int) -> None:
        """Call after the router has processed the link's loss."""
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
            old = self._labels.get(old_hop)
            cause = self._cause(old_hop, new_hop)
            reason = cause if new_hop is not None else f"no route left ({cause})"
            if new_hop is None:
                self._lost[prefix] = (now, old, cause)
            self.failovers.record(
                Failover(
                    now,
                    prefix,
                    key,
                    old,
                    None if new_hop is None else self._labels.get(new_hop),
                    reason,
                )
            )
        self._resync(fib)

    def _resync(self, fib: Mapping[bytes, int]) -> None:
        if self._lost:
            self._note_restored(fib)
        self._fib = dict(fib)
        keys = self._keys
        for prefix in fib:
            if prefix not in keys:
                key = self._router.route_public_key(prefix)
                if key is not None:
                    keys[prefix] = key
        for prefix in [p for p in keys if p not in fib]:
            del keys[prefix]

    def _note_restored(self, fib: Mapping[bytes, int]) -> None:
        """A route lost a moment ago is back, through another hop: that is the failover's end."""
        now = self._clock()
        for prefix in [p for p, (at, _, _) in self._lost.items() if now - at > RESTORE_WINDOW]:
            del self._lost[prefix]
        for prefix, hop in fib.items():
            if prefix in self._fib or prefix not in self._lost:
                continue
            at, old, why = self._lost.pop(prefix)
            self.failovers.record(
                Failover(
                    now,
                    prefix,
                    self._router.route_public_key(prefix),
                    old,
                    self._labels.get(hop),
                    f"route back after {now - at:.2f} s without one ({why})",
                )
            )

    def _cause(self, old_hop: int, new_hop: int | None) -> str:
        gone = self._gone.get(old_hop)
        if gone is not None:
            return f"link to the old next hop closed: {gone}"
        if old_hop not in self._labels:
            return "the old next hop is gone"
        return "a better route" if new_hop is not None else "the route was retracted"


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
