"""The worker's hard probing limits (sans-IO: every call takes ``now``).

Four limits, all enforced here and nowhere else, so no planner, target list or command line can
get around them:

* **per-worker packet rate**: a token bucket, default 20 packets/s (scamper's default) with a
  small burst;
* **per-prefix packet rate**: every probe addressed into the same IPv4 /24 or IPv6 /48 spends a
  token from that prefix's bucket, default 0.2 packets/s (well below the ~0.4-1 pkt/s where /24
  ICMP rate limits show up, Guo & Heidemann 2018);
* **per-target cooldown**: a measurement of a target may start only ``cooldown`` seconds after
  the previous one of that target ended;
* **bounded concurrency**: at most ``max_concurrent`` measurements at once, and at most one per
  prefix.

Memory is bounded: at most ``max_tracked`` prefix buckets and cooldown entries. An entry whose
bucket has refilled (or whose cooldown has passed) carries no information and is dropped first;
when the table is full of live entries, new work is refused rather than a limit forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address


class LimitError(RuntimeError):
    """A packet was sent (``consume``) that the limiter had not allowed."""


@dataclass(frozen=True)
class Limits:
    pps: float = 20.0  # packets per second, the whole worker
    burst: float = 5.0
    prefix_pps: float = 0.2  # packets per second into one /24 (/48)
    prefix_burst: float = 3.0
    cooldown: float = 300.0  # seconds between two measurements of one target
    max_concurrent: int = 16
    max_tracked: int = 100_000
    ipv4_prefix: int = 24
    ipv6_prefix: int = 48

    def __post_init__(self) -> None:
        if not (0 < self.pps <= 10_000 and 0 < self.prefix_pps <= self.pps):
            raise ValueError("need 0 < prefix_pps <= pps <= 10000")
        if self.burst < 1 or self.prefix_burst < 1:
            raise ValueError("bursts must be at least 1 packet")
        if self.cooldown < 0 or self.max_concurrent < 1 or self.max_tracked < 2:
            raise ValueError("cooldown >= 0, max_concurrent >= 1, max_tracked >= 2")
        if not (8 <= self.ipv4_prefix <= 32 and 16 <= self.ipv6_prefix <= 128):
            raise ValueError("ipv4_prefix in 8..32, ipv6_prefix in 16..128")

    def as_dict(self) -> dict[str, float]:
        return {
            "pps": self.pps,
            "burst": self.burst,
            "prefixPps": self.prefix_pps,
            "prefixBurst": self.prefix_burst,
            "cooldown": self.cooldown,
            "maxConcurrent": self.max_concurrent,
        }


_TOLERANCE = 1e-9  # float rounding: a token that is 0.999999999 there is there


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp

    def level(self, rate: float, burst: float, now: float) -> float:
        if now <= self.stamp:
            return self.tokens
        return min(burst, self.tokens + (now - self.stamp) * rate)

    def ready_at(self, rate: float, burst: float, now: float) -> float:
        """The earliest time >= now at which one token is there."""
        level = self.level(rate, burst, now)
        if level >= 1.0 - _TOLERANCE:
            return max(now, self.stamp)
        return max(now, self.stamp) + (1.0 - level) / rate

    def take(self, rate: float, burst: float, now: float) -> None:
        self.tokens = self.level(rate, burst, now) - 1.0
        self.stamp = max(now, self.stamp)


def prefix_key(target: str, limits: Limits) -> tuple[int, int]:
    """(family, network as int) of the prefix a target falls in; raises ValueError for non-IPs."""
    address = ip_address(target)
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, IPv4Address):
        return 4, int(address) >> (32 - limits.ipv4_prefix)
    return 6, int(address) >> (128 - limits.ipv6_prefix)


class Limiter:
    """Decides when the next packet to a target may leave, and whether a measurement may start."""

    def __init__(self, limits: Limits, now: float) -> None:
        self.limits = limits
        self._global = _Bucket(limits.burst, now)
        self._prefixes: dict[tuple[int, int], _Bucket] = {}
        self._cooldowns: dict[str, float] = {}  # target -> time the cooldown ends
        self._active: dict[str, tuple[int, int]] = {}  # target -> its prefix
        self._active_prefixes: set[tuple[int, int]] = set()
        self.sent = 0
        self.refused = {"concurrency": 0, "prefix-busy": 0, "cooldown": 0, "table-full": 0}

    # --- measurements ---------------------------------------------------------------------------

    def start(self, target: str, now: float) -> str | None:
        """Begin a measurement of ``target``: None when allowed, else why not (nothing changes)."""
        key = prefix_key(target, self.limits)
        reason: str | None = None
        if target in self._active or key in self._active_prefixes:
            reason = "prefix-busy"
        elif len(self._active) >= self.limits.max_concurrent:
            reason = "concurrency"
        elif self._cooldowns.get(target, -1.0) > now:
            reason = "cooldown"
        elif not self._room(now, 2):  # its prefix bucket and its cooldown entry, reserved
            reason = "table-full"
        if reason is not None:
            self.refused[reason] += 1
            return reason
        self._active[target] = key
        self._active_prefixes.add(key)
        return None

    def finish(self, target: str, now: float) -> None:
        """End a measurement; its target's cooldown starts now."""
        key = self._active.pop(target, None)
        if key is None:
            return
        self._active_prefixes.discard(key)
        if self.limits.cooldown > 0:  # the slot start() reserved
            self._cooldowns[target] = now + self.limits.cooldown

    def cooldown_until(self, target: str) -> float | None:
        return self._cooldowns.get(target)

    @property
    def active(self) -> int:
        return len(self._active)

    # --- packets --------------------------------------------------------------------------------

    def ready_at(self, target: str, now: float) -> float:
        """The earliest time >= now at which a packet to ``target`` may be sent."""
        limits = self.limits
        at = self._global.ready_at(limits.pps, limits.burst, now)
        bucket = self._prefixes.get(prefix_key(target, limits))
        if bucket is not None:
            at = max(at, bucket.ready_at(limits.prefix_pps, limits.prefix_burst, now))
        return at

    def try_send(self, target: str, now: float) -> bool:
        """Spend the tokens of one packet to ``target`` if allowed now; False if not."""
        if target not in self._active:
            return False  # packets belong to a started measurement: that is what holds concurrency
        if self.ready_at(target, now) > now:
            return False
        limits = self.limits
        key = prefix_key(target, limits)
        bucket = self._prefixes.get(key)
        if bucket is None:  # its slot was reserved by start()
            bucket = self._prefixes[key] = _Bucket(limits.prefix_burst, now)
        bucket.take(limits.prefix_pps, limits.prefix_burst, now)
        self._global.take(limits.pps, limits.burst, now)
        self.sent += 1
        return True

    # --- bounded tables -------------------------------------------------------------------------

    def _used(self) -> int:
        """Entries held plus two reserved for every running measurement (counted generously)."""
        return len(self._prefixes) + len(self._cooldowns) + 2 * len(self._active)

    def _room(self, now: float, need: int) -> bool:
        if self._used() + need <= self.limits.max_tracked:
            return True
        self._expire(now)
        return self._used() + need <= self.limits.max_tracked

    def _expire(self, now: float) -> None:
        limits = self.limits
        full = [
            key
            for key, bucket in self._prefixes.items()
            if key not in self._active_prefixes
            and bucket.level(limits.prefix_pps, limits.prefix_burst, now) >= limits.prefix_burst
        ]
        for key in full:
            del self._prefixes[key]
        for target in [t for t, until in self._cooldowns.items() if until <= now]:
            del self._cooldowns[target]

    def tracked(self) -> int:
        return len(self._prefixes) + len(self._cooldowns)
