"""What one benchmark run measures: the result records of each system, and the bench's error."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

SYSTEMS = ("veth", "hyphal", "yggdrasil", "wireguard-go")
LABELS = {
    "veth": "veth (baseline)",
    "hyphal": "hyphal",
    "yggdrasil": "yggdrasil",
    "wireguard-go": "wireguard-go",
}


class BenchError(Exception):
    """A system could not be set up or measured; the message says why."""


@dataclass
class Rtt:
    sent: int
    received: int
    avg_ms: float | None
    p50_ms: float | None
    p99_ms: float | None
    min_ms: float | None
    max_ms: float | None


@dataclass
class Iperf:
    gbps: float
    retransmits: int | None
    mss: int | None
    seconds: float


@dataclass
class Cpu:
    """CPU during the single-stream runs, in % of one core (machine busy is % of all cores)."""

    daemons: dict[str, dict[str, float]] = field(default_factory=dict)
    machine_busy_pct: float | None = None


@dataclass
class SystemResult:
    system: str
    status: str = "ok"  # ok | not installed | failed | skipped
    note: str = ""
    version: str = ""
    mtu: int | None = None
    address: str = ""
    tcp1: list[Iperf] = field(default_factory=list)
    tcp4: list[Iperf] = field(default_factory=list)
    rtt: Rtt | None = None
    cpu: Cpu | None = None
    setup_seconds: float | None = None

    @property
    def gbps1(self) -> float | None:
        return statistics.median(r.gbps for r in self.tcp1) if self.tcp1 else None

    @property
    def gbps4(self) -> float | None:
        return statistics.median(r.gbps for r in self.tcp4) if self.tcp4 else None
