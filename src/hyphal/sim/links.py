"""Simulated links: one-way latency, jitter, loss and a control-traffic bandwidth per direction.

A link joins two simulated nodes. Each direction is a FIFO queue, like the TCP stream a real
hyphal link is: a message waits for the messages queued before it, takes
``(len(payload) + FRAMING_OVERHEAD) * 8 / bandwidth`` seconds to serialise, then arrives one
latency (plus jitter) later. Arrivals never overtake each other, even with jitter.

Loss has two modes. ``"retransmit"`` (the default, what TCP does) delays a lost message by one
retransmission timeout and still delivers it in order; ``"drop"`` discards it (a datagram link).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

FRAMING_OVERHEAD = 4 + 4 + 16
"""Bytes a CONTROL frame costs on the wire beyond its body: record length (u32), frame header
(type u8 + length u24) and the AES-GCM tag. Counted in serialisation delay and in byte totals."""

DEFAULT_BANDWIDTH_BPS = 10_000_000.0
"""Bandwidth available to control traffic per link direction (bits per second)."""

MIN_RTO_S = 0.2
"""Retransmission timeout floor used when ``loss_mode`` is ``"retransmit"`` (Linux TCP's)."""


@dataclass
class LinkDirection:
    """State of one direction of a link: when its queue drains and when the last arrival lands."""

    busy_until: float = 0.0
    last_arrival: float = 0.0
    messages: int = 0
    bytes: int = 0
    dropped: int = 0


@dataclass
class SimLink:
    """An undirected simulated link between nodes ``a`` and ``b``."""

    index: int
    a: int
    b: int
    latency: float
    jitter: float = 0.0
    loss: float = 0.0
    bandwidth_bps: float = DEFAULT_BANDWIDTH_BPS
    loss_mode: str = "retransmit"
    up: bool = True
    """Physically up. A connection exists only when it is up and both ends are alive."""
    epoch: int = 0
    """Bumped on every connect/disconnect so in-flight messages of an old connection are dropped."""
    connected: bool = False
    peer_a: int = -1
    """Peer id of this link at node ``a`` (meaningful while connected)."""
    peer_b: int = -1
    dirs: dict[int, LinkDirection] = field(default_factory=dict)

    def other(self, node: int) -> int:
        return self.b if node == self.a else self.a

    def peer_at(self, node: int) -> int:
        return self.peer_a if node == self.a else self.peer_b

    def direction(self, sender: int) -> LinkDirection:
        d = self.dirs.get(sender)
        if d is None:
            d = self.dirs[sender] = LinkDirection()
        return d

    def transmit(self, sender: int, size: int, now: float, rng: random.Random) -> float | None:
        """Queue ``size`` payload bytes from ``sender``; the arrival time, or None if dropped."""
        d = self.direction(sender)
        wire = size + FRAMING_OVERHEAD
        d.messages += 1
        d.bytes += wire
        start = max(now, d.busy_until)
        d.busy_until = start + wire * 8.0 / self.bandwidth_bps
        arrival = d.busy_until + self.latency
        if self.jitter > 0.0:
            arrival += rng.random() * self.jitter
        if self.loss > 0.0 and rng.random() < self.loss:
            if self.loss_mode == "drop":
                d.dropped += 1
                return None
            arrival += max(MIN_RTO_S, 3.0 * self.latency)
        arrival = max(arrival, d.last_arrival)
        d.last_arrival = arrival
        return arrival

    def reset_queues(self) -> None:
        """Forget queued traffic (a new connection starts with empty queues)."""
        for d in self.dirs.values():
            d.busy_until = 0.0
            d.last_arrival = 0.0
