"""Data-plane counters with bounded memory: per peer, per direction, drops by reason.

Per-address statistics (Mycelium's `bySource`/`byDestination`) are kept for at most
`MAX_ADDRESS_ENTRIES` /64 prefixes each; the least recently seen prefix is evicted first, so a
flood of spoofed or scanned addresses cannot grow memory.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field
from ipaddress import IPv6Address

MAX_ADDRESS_ENTRIES = 1024


@dataclass
class Traffic:
    """Packets and bytes in one direction."""

    packets: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.packets += 1
        self.bytes += size


@dataclass
class PeerTraffic:
    """Data packets to and from one neighbour (keyed by its public key: survives reconnects)."""

    rx: Traffic = field(default_factory=Traffic)
    tx: Traffic = field(default_factory=Traffic)


class BoundedAddressTable:
    """Traffic per overlay /64 prefix, capped, least recently used evicted."""

    def __init__(self, limit: int = MAX_ADDRESS_ENTRIES) -> None:
        self.limit = limit
        self._entries: OrderedDict[bytes, Traffic] = OrderedDict()
        self.evicted = 0

    def add(self, prefix64: bytes, size: int) -> None:
        entry = self._entries.get(prefix64)
        if entry is None:
            if len(self._entries) >= self.limit:
                self._entries.popitem(last=False)
                self.evicted += 1
            entry = self._entries[prefix64] = Traffic()
        else:
            self._entries.move_to_end(prefix64)
        entry.add(size)

    def rows(self) -> list[dict[str, object]]:
        return [
            {
                "ip": str(IPv6Address(prefix + bytes(8))),
                "packetCount": t.packets,
                "byteCount": t.bytes,
            }
            for prefix, t in self._entries.items()
        ]


class DataplaneStats:
    """All data-plane counters of one node."""

    MAX_PEERS = 4096

    def __init__(self) -> None:
        self.peers: OrderedDict[bytes, PeerTraffic] = OrderedDict()
        self.drops: Counter[str] = Counter()
        self.local_tx = Traffic()
        self.local_rx = Traffic()
        self.forwarded = Traffic()
        self.by_source = BoundedAddressTable()
        self.by_destination = BoundedAddressTable()

    def peer(self, public_key: bytes) -> PeerTraffic:
        entry = self.peers.get(public_key)
        if entry is None:
            if len(self.peers) >= self.MAX_PEERS:
                self.peers.popitem(last=False)
            entry = self.peers[public_key] = PeerTraffic()
        return entry

    def drop(self, reason: str) -> None:
        self.drops[reason] += 1

    def report(self) -> dict[str, object]:
        """The packet statistics API body: Mycelium's shape plus peers, drops and totals."""
        return {
            "bySource": self.by_source.rows(),
            "byDestination": self.by_destination.rows(),
            "peers": [
                {"publicKey": key.hex(), "rx": asdict(t.rx), "tx": asdict(t.tx)}
                for key, t in self.peers.items()
            ],
            "local": {"tx": asdict(self.local_tx), "rx": asdict(self.local_rx)},
            "forwarded": asdict(self.forwarded),
            "drops": dict(sorted(self.drops.items())),
            "evictedAddressEntries": self.by_source.evicted + self.by_destination.evicted,
        }
