"""The static target space: the source CIDR lists minus the filter, cut into blocks (/24 for
IPv4, /48 for IPv6), held as segments so nothing is materialised.

A *block* is the unit of team probing: each cycle probes one address of every block (as Ark
does with routed /24s), so two targets handed out one after the other never share a /24 (/48).
A segment is either a run of whole blocks (a /16 is one segment of 256 blocks) or one partial
block with its host intervals (a /28, or what a filter leaves of a /24). Block i of the space
is found by bisecting the segments' first indexes; the host of a block for cycle c is the c-th
element of a keyed permutation of that block's hosts, so over H cycles every host is probed
exactly once.
"""

from __future__ import annotations

import bisect
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hyphal.mapping.feeder.permute import Permutation
from hyphal.mapping.feeder.prefixes import (
    Interval,
    PrefixSet,
    TargetFilter,
    parse_network,
    read_prefix_file,
    subtract,
)

BLOCK_BITS = {4: 8, 6: 80}
"""Host bits of a block: /24 for IPv4, /48 for IPv6."""
MAX_SOURCE_FILES = 10_000


@dataclass(frozen=True, slots=True)
class Segment:
    first: int
    """Index of this segment's first block in the space."""
    count: int
    af: int
    base: int
    """Integer network address of the segment's first block."""
    hosts: tuple[Interval, ...] | None
    """Host offsets inside the block (partial block), None for whole blocks."""


def block_key(af: int, value: int) -> str:
    """The block an address is in, as text (``198.18.3.0/24``, ``2001:db8:1::/48``)."""
    bits = BLOCK_BITS[af]
    net = (value >> bits) << bits
    if af == 4:
        return f"{ipaddress.IPv4Address(net)}/24"
    return f"{ipaddress.IPv6Address(net)}/48"


def ip_text(af: int, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if af == 4 else ipaddress.IPv6Address(value))


class TargetSpace:
    """Blocks of the filtered sources, indexable without expansion."""

    def __init__(self, networks: Iterable[str], target_filter: TargetFilter) -> None:
        allowed = PrefixSet(parse_network(t) for t in networks)
        self.segments: list[Segment] = []
        first = 0
        for af in (4, 6):
            keep = subtract(allowed.intervals[af], target_filter.denied(af))
            for seg in _segments(af, keep):
                self.segments.append(Segment(first, seg[0], af, seg[1], seg[2]))
                first += seg[0]
        self.blocks = first
        self._firsts = [s.first for s in self.segments]
        digest = hashlib.blake2b(digest_size=16)
        for s in self.segments:
            digest.update(repr((s.count, s.af, s.base, s.hosts)).encode())
        self.fingerprint = digest.hexdigest()
        """Same sources and filter on every instance <=> same fingerprint."""
        self._by_af = {af: [s for s in self.segments if s.af == af] for af in (4, 6)}
        self._bases = {af: [s.base for s in segs] for af, segs in self._by_af.items()}

    def segment(self, block: int) -> Segment:
        if not 0 <= block < self.blocks:
            raise IndexError(block)
        return self.segments[bisect.bisect_right(self._firsts, block) - 1]

    def block_of(self, block: int) -> tuple[int, int, tuple[Interval, ...] | None]:
        """(af, integer network address, host intervals or None) of block ``block``."""
        seg = self.segment(block)
        size = 1 << BLOCK_BITS[seg.af]
        return seg.af, seg.base + (block - seg.first) * size, seg.hosts

    def host(self, block: int, cycle: int, key: bytes) -> tuple[int, str]:
        """(af, address) probed in ``block`` during ``cycle``."""
        af, network, hosts = self.block_of(block)
        if hosts is None:
            size = 1 << BLOCK_BITS[af]
            perm = Permutation(size, key + network.to_bytes(16, "big"))
            return af, ip_text(af, network + perm[cycle % size])
        total = sum(hi - lo + 1 for lo, hi in hosts)
        perm = Permutation(total, key + network.to_bytes(16, "big"))
        k = perm[cycle % total]
        for lo, hi in hosts:
            width = hi - lo + 1
            if k < width:
                return af, ip_text(af, network + lo + k)
            k -= width
        raise AssertionError("host index out of range")

    def covers_block(self, key: str) -> bool:
        """Whether a block (``block_key`` text) is part of the static space."""
        net = ipaddress.ip_network(key)
        af = net.version
        value = int(net.network_address)
        seg_list = self._by_af[af]
        size = 1 << BLOCK_BITS[af]
        i = bisect.bisect_right(self._bases[af], value) - 1
        return i >= 0 and value < seg_list[i].base + seg_list[i].count * size


def _segments(
    af: int, intervals: list[Interval]
) -> list[tuple[int, int, tuple[Interval, ...] | None]]:
    """(count, base, hosts) per segment, partial pieces of one block merged."""
    bits = BLOCK_BITS[af]
    size = 1 << bits
    out: list[tuple[int, int, tuple[Interval, ...] | None]] = []
    pending: tuple[int, list[Interval]] | None = None  # a partial block being collected

    def add_partial(block: int, lo: int, hi: int) -> None:
        nonlocal pending
        if pending is not None and pending[0] == block:
            pending[1].append((lo - block, hi - block))
            return
        flush()
        pending = (block, [(lo - block, hi - block)])

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            out.append((1, pending[0], tuple(pending[1])))
            pending = None

    for lo, hi in intervals:
        cur = lo
        while cur <= hi:
            block = (cur >> bits) << bits
            end = block + size - 1
            if cur == block and hi >= end:
                n_full = (hi + 1 - block) >> bits
                flush()
                if out and out[-1][2] is None and out[-1][1] + out[-1][0] * size == block:
                    count, base, _ = out[-1]
                    out[-1] = (count + n_full, base, None)
                else:
                    out.append((n_full, block, None))
                cur = block + n_full * size
            else:
                piece_hi = min(hi, end)
                add_partial(block, cur, piece_hi)
                cur = piece_hi + 1
    flush()
    return out


def read_sources(paths: Iterable[Path]) -> list[str]:
    """CIDRs from list files and directories of ``.txt`` files (read recursively, sorted)."""
    out: list[str] = []
    for path in paths:
        files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
        if len(files) > MAX_SOURCE_FILES:
            raise ValueError(f"{path}: more than {MAX_SOURCE_FILES} list files")
        for file in files:
            out.extend(read_prefix_file(file))
    return out
