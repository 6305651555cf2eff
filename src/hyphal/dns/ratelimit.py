"""Response rate limiting for UDP answers (sans-IO: the caller passes the time).

DNS over UDP is an amplifier: a spoofed source gets our answer. Like BIND's RRL, every
response to a source prefix (IPv4 /24, IPv6 /64: one overlay node) spends a token from that
prefix's bucket, refilled at ``rate`` per second up to ``burst``; a global bucket caps the sum,
so many spoofed prefixes cannot add up to a flood either. A source out of tokens gets no
answer, except every ``slip``-th time: then a tiny truncated (TC) reply, so a real client
behind a busy prefix retries over TCP, which cannot be spoofed.

Memory is bounded: at most ``max_sources`` buckets, least recently seen evicted first.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address


class Verdict(enum.Enum):
    ANSWER = "answer"
    SLIP = "slip"  # answer with an empty truncated reply
    DROP = "drop"


@dataclass(frozen=True)
class RateLimits:
    rate: float = 20.0  # responses per second per source prefix
    burst: float = 40.0
    total_rate: float = 2000.0  # responses per second in all
    total_burst: float = 4000.0
    slip: int = 2  # every slip-th limited query gets a TC reply; 0: never
    max_sources: int = 4096
    ipv4_prefix: int = 24
    ipv6_prefix: int = 64


class _Bucket:
    __slots__ = ("limited", "stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp
        self.limited = 0

    def take(self, rate: float, burst: float, now: float) -> bool:
        if now > self.stamp:
            self.tokens = min(burst, self.tokens + (now - self.stamp) * rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def source_key(source: str, limits: RateLimits) -> bytes:
    """The bucket key of a source address: its prefix, packed (v4-mapped IPv6 as IPv4)."""
    try:
        address = ip_address(source.split("%", 1)[0])
    except ValueError:
        return b"?"
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    packed = int.from_bytes(address.packed, "big")
    bits = 32 if isinstance(address, IPv4Address) else 128
    keep = limits.ipv4_prefix if bits == 32 else limits.ipv6_prefix
    masked = packed >> (bits - keep) << (bits - keep)
    return masked.to_bytes(bits // 8, "big")


class ResponseRateLimiter:
    """Per-source-prefix and global token buckets; see the module doc."""

    def __init__(self, limits: RateLimits, now: float) -> None:
        self.limits = limits
        self._sources: OrderedDict[bytes, _Bucket] = OrderedDict()
        self._total = _Bucket(limits.total_burst, now)
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._sources)

    def check(self, source: str, now: float) -> Verdict:
        limits = self.limits
        key = source_key(source, limits)
        bucket = self._sources.get(key)
        if bucket is None:
            bucket = _Bucket(limits.burst, now)
            self._sources[key] = bucket
            if len(self._sources) > limits.max_sources:
                self._sources.popitem(last=False)
                self.evicted += 1
        else:
            self._sources.move_to_end(key)
        if bucket.take(limits.rate, limits.burst, now) and self._total.take(
            limits.total_rate, limits.total_burst, now
        ):
            return Verdict.ANSWER
        bucket.limited += 1
        if limits.slip and bucket.limited % limits.slip == 0:
            return Verdict.SLIP
        return Verdict.DROP
