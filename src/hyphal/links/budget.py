"""Handshake budget: how many inbound handshakes (X25519 work) unverified sources may start.

Sans-IO token buckets with an injected clock: one per source address and one global. A TCP
connection has already proved its source address by the three-way handshake, so the stateless
cookie/retry round trip that WireGuard and QUIC need over UDP would prove nothing new here; a
rate limit per proven address plus a global budget bounds the Diffie-Hellman work a flood can
cause. The per-source table is bounded: the least recently seen source is forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class HandshakeBudget:
    """Admits a new inbound handshake only while its source and the node have tokens left."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        per_source_rate: float = 2.0,
        per_source_burst: float = 8.0,
        global_rate: float = 200.0,
        global_burst: float = 400.0,
        max_sources: int = 4096,
    ) -> None:
        self._clock = clock
        self._per_source = (per_source_rate, per_source_burst)
        self._max_sources = max_sources
        now = clock()
        self._global = TokenBucket(global_rate, global_burst, global_burst, now)
        self._sources: OrderedDict[str, TokenBucket] = OrderedDict()

    def admit(self, source: str) -> str | None:
        """None to admit a handshake from `source`, or why not."""
        now = self._clock()
        bucket = self._sources.get(source)
        if bucket is None:
            rate, burst = self._per_source
            bucket = self._sources[source] = TokenBucket(rate, burst, burst, now)
            if len(self._sources) > self._max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(source)
        if not bucket.take(now):
            return f"handshake rate limit for {source} exceeded"
        if not self._global.take(now):
            return "global handshake rate limit exceeded"
        return None
