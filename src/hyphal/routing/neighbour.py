"""Per-neighbour state: hello schedule, RTT estimate from Hello/IHU, damped link cost, liveness.

The link cost follows the *minimum* of the last ``rtt_window`` RTT samples, not their average:
queueing (a hello or its IHU waiting behind a full table dump on the same stream) only ever adds
delay, so one clean sample in the window gives the propagation delay. An average let every
periodic dump raise link costs by tens of percent for a few seconds, which moved routes network
wide and back (see docs/routing.md, "Link cost").
"""

from __future__ import annotations

from hyphal.routing.metric import INFINITY
from hyphal.routing.params import RoutingParams


class Neighbour:
    """One directly connected peer. ``cost`` is INFINITY until the first RTT sample."""

    __slots__ = (
        "client_key",
        "cost",
        "created",
        "hello_seqno",
        "last_heard",
        "next_hello",
        "peer",
        "rtt",
        "rtt_samples",
        "sent_hellos",
    )

    def __init__(self, peer: int, now: float, client_key: bytes | None = None) -> None:
        self.peer = peer
        # Set if the neighbour declared the client role: its public key. Only updates it
        # originates itself (router id of this key) are taken from it; it is never a transit hop.
        self.client_key = client_key
        self.rtt: float | None = None  # smoothed (EWMA) RTT, for display
        self.rtt_samples: list[float] = []  # the last rtt_window samples, oldest first
        self.cost = INFINITY
        self.last_heard = now
        self.next_hello = now
        self.hello_seqno = 0
        # Prefix entries this neighbour's updates created, oldest first (its table quota).
        self.created: dict[bytes, None] = {}
        # Timestamps of the last few hellos by seqno: an IHU must echo one of them exactly.
        self.sent_hellos: dict[int, int] = {}

    @property
    def usable(self) -> bool:
        return self.rtt is not None

    def rtt_sample(self, sample: float, params: RoutingParams) -> bool:
        """Fold one RTT sample in; True if the link cost changed (including first measurement)."""
        if self.rtt is None:
            self.rtt = sample
        else:
            self.rtt += params.rtt_alpha * (sample - self.rtt)
        window = self.rtt_samples
        window.append(sample)
        if len(window) > params.rtt_window:
            del window[0]
        new_cost = max(params.cost_floor, round(min(window) / 2 / params.metric_unit))
        new_cost = min(new_cost, INFINITY - 1)
        old = self.cost
        if old == INFINITY:
            self.cost = new_cost
            return True
        if abs(new_cost - old) > max(params.cost_damping_abs, params.cost_damping_rel * old):
            self.cost = new_cost
            return True
        return False
