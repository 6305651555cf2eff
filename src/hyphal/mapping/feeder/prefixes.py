"""Address sets as sorted, merged integer intervals, and the feeder's filter: bogons, the
operator's opt-out list and explicit exceptions.

Why intervals over a radix trie (pytricia, py-radix): the feeder needs two things from a
prefix list, and intervals do both with the standard library: (1) "is this address covered"
(bisect, O(log n), the longest-prefix-match answer for a deny list), and (2) *subtracting* the
list from the source CIDRs before the target space is built, so a filtered address is never
even enumerable. A trie answers (1) but not (2); IPv4 and IPv6 are one code path here.

Semantics (docs/mapping.md "Filters"): an address is refused when it is in the opt-out list
(always: the operator's word is final), or when it is in the bogon list and not in an explicit
exception (the lab passes 198.18.0.0/15 and 2001:db8::/32).
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

Interval = tuple[int, int]
"""Inclusive [lo, hi] over one family's integer addresses."""

BOGONS_V4 = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
)  # fmt: skip
BOGONS_V6 = (
    # Everything outside global unicast 2000::/3 (loopback, ULA fc00::/7, link-local, multicast,
    # the overlay's own 400::/7, NAT64 64:ff9b::/96, ...), and inside it: IETF protocol space
    # (Teredo, benchmarking, ORCHID), documentation (2001:db8::/32, 3fff::/20), 6to4.
    "::/3", "4000::/2", "8000::/1", "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20",
)  # fmt: skip


class PrefixError(ValueError):
    pass


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR (host bits tolerated and cleared) or a bare address (/32, /128)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise PrefixError(f"{text.strip()[:80]!r} is not a CIDR or IP address") from None


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def subtract(base: list[Interval], cut: list[Interval]) -> list[Interval]:
    """``base`` minus ``cut`` (both merged and sorted)."""
    out: list[Interval] = []
    j = 0
    for lo, hi in base:
        while j < len(cut) and cut[j][1] < lo:
            j += 1
        k = j
        cur = lo
        while k < len(cut) and cut[k][0] <= hi:
            if cut[k][0] > cur:
                out.append((cur, cut[k][0] - 1))
            cur = max(cur, cut[k][1] + 1)
            k += 1
        if cur <= hi:
            out.append((cur, hi))
    return out


class PrefixSet:
    """A set of addresses of both families, as merged intervals per family."""

    def __init__(self, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()):
        parts: dict[int, list[Interval]] = {4: [], 6: []}
        for net in networks:
            parts[net.version].append((int(net.network_address), int(net.broadcast_address)))
        self.intervals: dict[int, list[Interval]] = {v: _merge(p) for v, p in parts.items()}
        self._starts = {v: [lo for lo, _ in iv] for v, iv in self.intervals.items()}

    @classmethod
    def of(cls, texts: Iterable[str]) -> PrefixSet:
        return cls(parse_network(t) for t in texts)

    def __contains__(self, address: object) -> bool:
        if isinstance(address, str):
            address = ipaddress.ip_address(address)
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        return self.covers(address.version, int(address))

    def covers(self, version: int, value: int) -> bool:
        starts = self._starts[version]
        i = bisect.bisect_right(starts, value) - 1
        return i >= 0 and self.intervals[version][i][1] >= value

    def __len__(self) -> int:
        return sum(len(v) for v in self.intervals.values())


def read_prefix_lines(lines: Iterable[str], where: str) -> Iterator[str]:
    """CIDR lines of a list file: ``#`` comments and blank lines skipped."""
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text:
            try:
                parse_network(text)
            except PrefixError as exc:
                raise PrefixError(f"{where}:{number}: {exc}") from None
            yield text


def read_prefix_file(path: Path) -> list[str]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        return list(read_prefix_lines(handle, str(path)))


@dataclass(frozen=True)
class TargetFilter:
    """What may never be probed: opt-out always, bogons unless excepted."""

    optout: PrefixSet
    bogons: PrefixSet
    exceptions: PrefixSet

    @classmethod
    def build(
        cls,
        optout: Iterable[str] = (),
        exceptions: Iterable[str] = (),
        filter_bogons: bool = True,
    ) -> TargetFilter:
        bogons = PrefixSet.of((*BOGONS_V4, *BOGONS_V6)) if filter_bogons else PrefixSet()
        return cls(PrefixSet.of(optout), bogons, PrefixSet.of(exceptions))

    def verdict(self, ip: str) -> str | None:
        """None when ``ip`` may be probed, else why not (``optout``, ``bogon``, ``invalid``)."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return "invalid"
        value = int(address)
        if self.optout.covers(address.version, value):
            return "optout"
        if self.bogons.covers(address.version, value) and not self.exceptions.covers(
            address.version, value
        ):
            return "bogon"
        return None

    def denied(self, version: int) -> list[Interval]:
        """The intervals of ``version`` never to be enumerated."""
        bogon = subtract(self.bogons.intervals[version], self.exceptions.intervals[version])
        return _merge([*bogon, *self.optout.intervals[version]])
