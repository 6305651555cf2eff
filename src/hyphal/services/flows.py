"""The flow table behind service addresses: which instance each connection is pinned to.

Sans-IO: every call takes ``now``; nothing here reads a clock, sleeps or touches a socket.

A *flow* is what the source node sees of one conversation with a service address: the packet's
source and destination address, its protocol and its two ports (for an ICMPv6 echo, the echo
identifier stands in for the source port). Its key is those bytes packed together
(:func:`flow_key`). The first packet of a flow picks an instance (the caller's choice: nearest
healthy); every later packet of it goes to that same instance until the flow ends, however health
and distance change meanwhile. Only a *new* flow follows them.

When a flow starts and ends
    * TCP: only a SYN (without ACK) starts a flow. A TCP segment of any other kind with no flow
      is refused (:data:`REFUSE_NO_FLOW`; the caller answers with a reset), because sending it
      to whichever instance is nearest now would hand a stranger the middle of a connection.
      A FIN (either way) shortens the idle timeout to :attr:`FlowLimits.tcp_closing`; a RST,
      or FINs both ways, closes the flow (:attr:`FlowLimits.tcp_closed`). A SYN on a closed
      flow (a port reused) starts a new flow, which may pick another instance.
    * UDP: any datagram starts a flow; it ends after :attr:`FlowLimits.udp_idle` without a
      datagram either way. 120 s is RFC 4787's minimum for a NAT's UDP mapping and the
      Linux conntrack default for an assured UDP stream.
    * ICMPv6 echo: a request starts a flow keyed by its identifier; idle :attr:`echo_idle`.
    * TCP idle timeouts: :attr:`tcp_opening` (30 s) until the client sends a non-SYN segment,
      then :attr:`tcp_established` (2 h 4 min, RFC 5382's minimum for an established TCP
      mapping), so a quiet SSH session keeps its instance.

Bounds (:class:`FlowLimits`)
    At most ``max_flows`` flows and ``max_per_source`` per source address. A new flow that
    would cross a bound first makes room from expired flows, then from *closed* ones (a RST
    or FINs both ways were seen: nothing more is expected of them), oldest first. A live flow
    is never evicted: if no room can be made the new flow is refused
    (:data:`REFUSE_TABLE_FULL`, :data:`REFUSE_SOURCE_FULL`) and the caller answers with an
    ICMPv6 "administratively prohibited", which fails a connect() at once. Nothing already
    pinned ever moves because a table filled up.

When the pinned instance goes away
    The caller checks on each packet that the flow's instance is still an authorised instance
    with a route. If not it calls :meth:`FlowTable.fail`: the flow is removed and the packet
    answered with an error (TCP: a reset; UDP and echo: ICMPv6 unreachable). Such a flow
    never moves silently, for UDP either: a UDP protocol with session state (QUIC, WireGuard,
    DTLS) would be handed to an instance that knows nothing of it. The *next* UDP datagram is
    a new flow and goes to the nearest healthy instance, which is what a DNS client's retry
    wants. A TCP connection's next segment has no flow and is reset.
"""

from __future__ import annotations

import heapq
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, NamedTuple

from hyphal.dataplane import ipv6

TCP: Final = 6
UDP: Final = 17
ICMPV6: Final = ipv6.ICMPV6

TCP_FIN: Final = 0x01
TCP_SYN: Final = 0x02
TCP_RST: Final = 0x04
TCP_ACK: Final = 0x10

REFUSE_NO_FLOW: Final = "tcp-no-flow"
REFUSE_TABLE_FULL: Final = "table-full"
REFUSE_SOURCE_FULL: Final = "source-full"

KEY_LEN: Final = 37  # src 16 | dst 16 | proto 1 | sport 2 | dport 2
_PORTS = struct.Struct("!HH")
_PROTO_BYTE = {TCP: b"\x06", UDP: b"\x11", ICMPV6: b"\x3a"}


@dataclass(frozen=True, slots=True)
class FlowLimits:
    """Sizes and idle timeouts (seconds) of a :class:`FlowTable`; the defaults are documented
    in the module docstring and docs/service-addresses.md."""

    max_flows: int = 65536
    max_per_source: int = 16384
    tcp_opening: float = 30.0
    tcp_established: float = 7440.0
    tcp_closing: float = 120.0
    tcp_closed: float = 10.0
    udp_idle: float = 120.0
    echo_idle: float = 30.0

    def __post_init__(self) -> None:
        if self.max_flows < 1 or self.max_per_source < 1:
            raise ValueError("flow table bounds must be at least 1")


class PacketFlow(NamedTuple):
    """What :func:`flow_key` reads from one packet (a tuple: it is built for every packet)."""

    key: bytes
    proto: int
    src_port: int
    dst_port: int
    tcp_flags: int  # 0 unless TCP


def flow_key(packet: ipv6.Buffer) -> PacketFlow | None:
    """The flow of an IPv6 packet that carries TCP, UDP or an ICMPv6 echo request/reply
    directly after the fixed header; None for anything else (extension headers, fragments,
    other protocols, ICMPv6 errors, truncated headers). Never raises."""
    n = len(packet)
    if n < 48 or packet[0] >> 4 != 6:
        return None
    proto = packet[6]
    if proto in (TCP, UDP):
        if proto == TCP and n < 60:
            return None
        raw = bytes(packet[8:44])  # both addresses, then both ports
        sport, dport = _PORTS.unpack_from(raw, 32)
        flags = packet[53] if proto == TCP else 0
        return PacketFlow(raw[:32] + _PROTO_BYTE[proto] + raw[32:], proto, sport, dport, flags)
    if proto == ICMPV6 and packet[40] in (ipv6.ICMPV6_ECHO_REQUEST, ipv6.ICMPV6_ECHO_REPLY):
        ident = bytes(packet[44:46])
        key = bytes(packet[8:40]) + _PROTO_BYTE[ICMPV6] + ident + b"\0\0"
        return PacketFlow(key, ICMPV6, (ident[0] << 8) | ident[1], 0, 0)
    return None


def reverse_key(key: bytes) -> bytes:
    """The key of the same flow seen from the other end (addresses and ports swapped)."""
    if key[32] == ICMPV6:
        return key[16:32] + key[:16] + key[32:33] + key[33:35] + bytes(2)
    return key[16:32] + key[:16] + key[32:33] + key[35:37] + key[33:35]


_OPENING, _ESTABLISHED, _CLOSING, _CLOSED, _DATAGRAM = range(5)
_STATE_NAMES = ("opening", "established", "closing", "closed", "active")


@dataclass(slots=True)
class Flow:
    """One pinned flow. ``instance`` is the public key of the node serving it."""

    key: bytes
    service: str
    instance: bytes
    proto: int
    started: float
    last_seen: float
    expires: float
    state: int
    fin_out: bool = False
    fin_in: bool = False
    generation: int = 0
    packets: int = 0
    checked: float = 0.0
    """When the caller last confirmed the instance is still authorised (its own bookkeeping)."""

    @property
    def source(self) -> bytes:
        return self.key[:16]

    @property
    def state_name(self) -> str:
        return _STATE_NAMES[self.state]

    @property
    def closed(self) -> bool:
        return self.state == _CLOSED


class FlowTable:
    """Flow key -> pinned instance, bounded overall and per source address."""

    def __init__(self, limits: FlowLimits | None = None) -> None:
        self.limits = limits or FlowLimits()
        self._flows: dict[bytes, Flow] = {}
        self._per_source: dict[bytes, int] = {}
        # Expiry timers: (deadline, generation, key); one live entry per flow, stale ones skipped.
        self._timers: list[tuple[float, int, bytes]] = []
        # Closed flows, oldest first: the only ones a new flow may evict.
        self._closed: OrderedDict[bytes, None] = OrderedDict()
        self._closed_by_source: dict[bytes, OrderedDict[bytes, None]] = {}
        self.counters: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._flows)

    def __contains__(self, key: object) -> bool:
        return key in self._flows

    def get(self, key: bytes) -> Flow | None:
        return self._flows.get(key)

    def flows(self) -> list[Flow]:
        return list(self._flows.values())

    def per_source(self, source: bytes) -> int:
        return self._per_source.get(source, 0)

    def _count(self, event: str) -> None:
        self.counters[event] = self.counters.get(event, 0) + 1

    # lookups ------------------------------------------------------------------------------------

    def lookup(self, packet: PacketFlow, now: float) -> Flow | None:
        """The live flow ``packet`` belongs to, or None if it would start a new one (or, for a
        TCP segment that is not a SYN, be refused). Expired flows are removed first. A SYN on a
        closed flow returns None: it is a new connection on a reused port."""
        self.expire(now)
        flow = self._flows.get(packet.key)
        if flow is None:
            return None
        if packet.proto == TCP and _is_syn(packet.tcp_flags) and flow.closed:
            self._remove(flow)
            return None
        return flow

    def may_open(self, packet: PacketFlow) -> bool:
        """Whether ``packet`` may start a flow (TCP: only a SYN without ACK)."""
        return packet.proto != TCP or _is_syn(packet.tcp_flags)

    def open(self, packet: PacketFlow, service: str, instance: bytes, now: float) -> Flow | str:
        """Start a flow for ``packet`` pinned to ``instance``: the new flow, or a refusal reason
        (:data:`REFUSE_NO_FLOW`, :data:`REFUSE_TABLE_FULL`, :data:`REFUSE_SOURCE_FULL`)."""
        if not self.may_open(packet):
            self._count(REFUSE_NO_FLOW)
            return REFUSE_NO_FLOW
        self.expire(now)
        existing = self._flows.get(packet.key)
        if existing is not None:
            if not existing.closed:
                raise ValueError("open() on a live flow: call lookup() first")
            self._remove(existing)
        source = packet.key[:16]
        limits = self.limits
        if self._per_source.get(source, 0) >= limits.max_per_source and not self._evict(source):
            self._count(REFUSE_SOURCE_FULL)
            return REFUSE_SOURCE_FULL
        if len(self._flows) >= limits.max_flows and not self._evict(None):
            self._count(REFUSE_TABLE_FULL)
            return REFUSE_TABLE_FULL
        if packet.proto == TCP:
            state, idle = _OPENING, limits.tcp_opening
        elif packet.proto == UDP:
            state, idle = _DATAGRAM, limits.udp_idle
        else:
            state, idle = _DATAGRAM, limits.echo_idle
        flow = Flow(packet.key, service, instance, packet.proto, now, now, now + idle, state)
        flow.checked = now
        self._flows[packet.key] = flow
        self._per_source[source] = self._per_source.get(source, 0) + 1
        heapq.heappush(self._timers, (flow.expires, 0, packet.key))
        self._count("opened")
        return flow

    # state --------------------------------------------------------------------------------------

    def outbound(self, flow: Flow, packet: PacketFlow, now: float) -> None:
        """A packet of ``flow`` from the source (towards the instance) was sent."""
        flow.packets += 1
        self._advance(flow, packet.tcp_flags, now, outbound=True)

    def inbound(self, flow: Flow, tcp_flags: int, now: float) -> None:
        """A reply of ``flow`` from its instance arrived."""
        self._advance(flow, tcp_flags, now, outbound=False)

    def _advance(self, flow: Flow, flags: int, now: float, *, outbound: bool) -> None:
        limits = self.limits
        flow.last_seen = now
        if flow.proto != TCP:
            idle = limits.udp_idle if flow.proto == UDP else limits.echo_idle
            self._extend(flow, now + idle)
            return
        if flow.state == _CLOSED:
            return  # a closed flow's deadline stays short whatever stragglers arrive
        if flags & TCP_RST:
            self._set_state(flow, _CLOSED, now + limits.tcp_closed)
            return
        if flags & TCP_FIN:
            if outbound:
                flow.fin_out = True
            else:
                flow.fin_in = True
            if flow.fin_out and flow.fin_in:
                self._set_state(flow, _CLOSED, now + limits.tcp_closing)
                return
            self._set_state(flow, _CLOSING, now + limits.tcp_closing)
            return
        if flow.state == _CLOSING:
            self._extend(flow, now + limits.tcp_closing)
        elif flow.state == _OPENING and outbound and not flags & TCP_SYN:
            self._set_state(flow, _ESTABLISHED, now + limits.tcp_established)
        elif flow.state == _OPENING:
            self._extend(flow, now + limits.tcp_opening)
        else:
            self._extend(flow, now + limits.tcp_established)

    def _extend(self, flow: Flow, expires: float) -> None:
        """Move the deadline later (the heap entry is re-armed lazily when it comes due)."""
        if expires > flow.expires:
            flow.expires = expires

    def _set_state(self, flow: Flow, state: int, expires: float) -> None:
        was_closed = flow.closed
        flow.state = state
        if expires < flow.expires:  # shorter: a new heap entry, the old one goes stale
            flow.generation += 1
            heapq.heappush(self._timers, (expires, flow.generation, flow.key))
        flow.expires = expires
        if state == _CLOSED and not was_closed:
            self._closed[flow.key] = None
            self._closed_by_source.setdefault(flow.source, OrderedDict())[flow.key] = None

    # removal ------------------------------------------------------------------------------------

    def fail(self, flow: Flow) -> None:
        """The flow's instance is gone: forget the flow (the caller answers with an error)."""
        if self._flows.get(flow.key) is flow:
            self._remove(flow)
            self._count("failed")

    def expire(self, now: float) -> int:
        """Remove every flow idle past its timeout; returns how many."""
        timers, removed = self._timers, 0
        while timers and timers[0][0] <= now:
            _, generation, key = heapq.heappop(timers)
            flow = self._flows.get(key)
            if flow is None or flow.generation != generation:
                continue  # stale entry: the flow is gone or has a shorter timer of its own
            if flow.expires > now:
                heapq.heappush(timers, (flow.expires, generation, key))
                continue
            self._remove(flow)
            removed += 1
        if removed:
            self.counters["expired"] = self.counters.get("expired", 0) + removed
        if len(timers) > 4 * len(self._flows) + 64:
            self._compact()
        return removed

    def next_deadline(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def _compact(self) -> None:
        self._timers = [(f.expires, f.generation, k) for k, f in self._flows.items()]
        heapq.heapify(self._timers)

    def _evict(self, source: bytes | None) -> bool:
        """Remove the oldest closed flow (of ``source``, if given); False if there is none."""
        pool = self._closed if source is None else self._closed_by_source.get(source)
        if not pool:
            return False
        key = next(iter(pool))
        self._remove(self._flows[key])
        self._count("evicted-closed")
        return True

    def _remove(self, flow: Flow) -> None:
        key, source = flow.key, flow.source
        del self._flows[key]
        left = self._per_source[source] - 1
        if left:
            self._per_source[source] = left
        else:
            del self._per_source[source]
        if key in self._closed:
            del self._closed[key]
            pool = self._closed_by_source[source]
            del pool[key]
            if not pool:
                del self._closed_by_source[source]
        flow.generation = -1  # any heap entry left for it is stale


def _is_syn(flags: int) -> bool:
    return flags & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_SYN
