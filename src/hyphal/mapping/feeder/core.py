"""The feeder's decisions, free of I/O: the order of a cycle, the target at a position, and what
becomes of a hop a worker reports (Doubletree-style stop sets).

A cycle is one pass over a *universe* of blocks: the static space's blocks, then the hop blocks
(blocks discovered through ``/hops`` and not already in the static space) that existed when the
cycle began. Position p of cycle n is block ``Permutation(universe, key_n)[p]``; each block
appears exactly once per cycle, so consecutive positions never share a /24 (/48), and a worker
that claims positions [a, b) is the only worker given those blocks this cycle. The cycle key is
derived from the shared secret and the cycle number; when the first block of a new cycle
would be the last block of the previous one, the next key variant is taken, so the rule also
holds across the cycle boundary.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hyphal.mapping.feeder.permute import Permutation
from hyphal.mapping.feeder.prefixes import TargetFilter
from hyphal.mapping.feeder.space import TargetSpace, block_key

# Keys tried for a cycle whose first block is not the last one's: all miss with chance n^-64, so
# even a two-block universe (1/2 per try) never repeats a block across the boundary in practice.
MAX_KEY_VARIANTS = 64


def cycle_key(secret: bytes, cycle: int, variant: int = 0) -> bytes:
    return hashlib.blake2b(
        b"hyphal-feeder-cycle" + cycle.to_bytes(8, "big") + variant.to_bytes(2, "big"),
        key=secret[:64],
        digest_size=32,
    ).digest()


def choose_cycle_key(secret: bytes, cycle: int, universe: int, previous_last: int | None) -> bytes:
    """The key of cycle ``cycle``: its first block differs from ``previous_last`` (the universe
    index the previous cycle ended on) whenever the universe has two blocks or more."""
    key = cycle_key(secret, cycle)
    if previous_last is None or universe < 2:
        return key
    for variant in range(MAX_KEY_VARIANTS):
        key = cycle_key(secret, cycle, variant)
        if Permutation(universe, key)[0] != previous_last:
            return key
    return key  # 64 misses in a row (chance n^-64): a repeat once is harmless


@dataclass(frozen=True, slots=True)
class Target:
    ip: str
    block: int
    """Universe index of the block."""
    proto: str = "icmp"


class CycleView:
    """Targets of one cycle, computed from its key and universe."""

    def __init__(
        self,
        space: TargetSpace,
        number: int,
        key: bytes,
        universe: int,
        hop_hosts: Callable[[int], Sequence[str]],
        host_key: bytes,
    ) -> None:
        self.space = space
        self.number = number
        self.key = key
        self.universe = universe
        self.perm = Permutation(universe, key) if universe else None
        self._hop_hosts = hop_hosts
        # Per-block host order must not change between cycles (it is indexed by the cycle
        # number), so it is keyed by the secret and the space, not by the cycle key.
        self._host_key = host_key

    def block_at(self, position: int) -> int:
        assert self.perm is not None
        return self.perm[position]

    def target(self, position: int) -> Target | None:
        """The target at ``position`` (None only for a hop block that has no host left)."""
        block = self.block_at(position)
        if block < self.space.blocks:
            # The block's host advances with the cycle number: every host once per H cycles.
            _af, ip = self.space.host(block, self.number, self._host_key)
            return Target(ip, block)
        hosts = self._hop_hosts(block - self.space.blocks + 1)
        if not hosts:
            return None
        return Target(hosts[self.number % len(hosts)], block)


def host_key(secret: bytes, space: TargetSpace) -> bytes:
    return hashlib.blake2b(
        b"hyphal-feeder-hosts" + space.fingerprint.encode(), key=secret[:64], digest_size=32
    ).digest()


@dataclass(frozen=True, slots=True)
class HopVerdict:
    kind: str
    """``filtered``, ``near`` (near the reporting worker: its local stop set), ``static`` (its
    block is probed every cycle anyway) or ``candidate`` (a new target unless already known)."""
    reason: str | None = None
    block: str | None = None


def classify_hop(
    ip: str, ttl: int, space: TargetSpace, target_filter: TargetFilter, near_ttl: int
) -> HopVerdict:
    """What a reported hop becomes; filters are applied before anything is queued."""
    reason = target_filter.verdict(ip)
    if reason is not None:
        return HopVerdict("filtered", reason)
    address = ipaddress.ip_address(ip)
    key = block_key(address.version, int(address))
    if ttl <= near_ttl:
        return HopVerdict("near", block=key)
    if space.covers_block(key):
        return HopVerdict("static", block=key)
    return HopVerdict("candidate", block=key)
