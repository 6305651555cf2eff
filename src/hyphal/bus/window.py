"""Sender-side timing and window helpers: RFC 6298 RTT estimation and a small AIMD window.

``RttEstimator`` keeps SRTT/RTTVAR exactly like TCP (alpha 1/8, beta 1/4, RTO = SRTT + 4 RTTVAR,
clamped to [min_rto, max_rto]) and doubles the RTO on every expiry (exponential backoff) until a
fresh sample arrives. Samples must come from chunks sent once only (Karn's rule; the caller
enforces it). ``CongestionWindow`` is slow start then additive increase, halved once per loss
episode and reset to its floor on a retransmission timeout, counted in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_RTO = 1.0
MIN_RTO = 0.2
MAX_RTO = 60.0


@dataclass(slots=True)
class RttEstimator:
    srtt: float | None = None
    rttvar: float = 0.0
    rto: float = INITIAL_RTO
    min_rto: float = MIN_RTO
    max_rto: float = MAX_RTO
    backoffs: int = 0

    def sample(self, rtt: float) -> None:
        """Feed one RTT measurement (seconds) and reset the backoff."""
        rtt = max(rtt, 0.0)
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.backoffs = 0
        self.rto = min(max(self.srtt + 4 * self.rttvar, self.min_rto), self.max_rto)

    def backoff(self) -> None:
        """The retransmission timer expired: double the RTO (bounded)."""
        self.backoffs += 1
        self.rto = min(self.rto * 2, self.max_rto)


@dataclass(slots=True)
class CongestionWindow:
    """A chunk-counted AIMD window (slow start up to ``ssthresh``, then +1 chunk per window)."""

    cwnd: float = 4.0
    ssthresh: float = 1e9
    floor: float = 1.0
    ceiling: float = 4096.0

    @property
    def chunks(self) -> int:
        return max(int(self.cwnd), int(self.floor))

    def on_ack(self, acked_chunks: int) -> None:
        for _ in range(acked_chunks):
            if self.cwnd < self.ssthresh:
                self.cwnd += 1.0
            else:
                self.cwnd += 1.0 / self.cwnd
        self.cwnd = min(self.cwnd, self.ceiling)

    def on_loss(self) -> None:
        self.ssthresh = max(self.cwnd / 2, 2.0)
        self.cwnd = self.ssthresh

    def on_timeout(self) -> None:
        self.ssthresh = max(self.cwnd / 2, 2.0)
        self.cwnd = self.floor
