"""One outbound message transfer and its sender-side behaviour (sans-IO).

:class:`OutboundTransfer` owns a message's chunk bookkeeping (acknowledged bitmap, chunks in
flight, loss queue), its RTT estimator and congestion window (``hyphal.bus.window``), and reacts
to the receiver: :meth:`~OutboundTransfer.pump` sends what the windows allow,
:meth:`~OutboundTransfer.on_ack` processes an ACK (RACK-style loss detection in
:meth:`~OutboundTransfer.on_loss`), :meth:`~OutboundTransfer.on_timeout` runs the retransmission
and BUSY-backoff timers, :meth:`~OutboundTransfer.on_busy` / ``on_unknown`` restart it. Bytes in
flight per destination, shared by every transfer to it, are counted in :class:`PeerInflight`.
The core (``hyphal.bus.core``) owns queueing, activation, deadlines, status records and timers.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from hyphal.bus.actions import (
    FINAL_STATES,
    REASON_WAITING,
    Action,
    MessageStatus,
    OutKey,
    OutState,
    SendPacket,
    StatusChanged,
)
from hyphal.bus.window import INITIAL_RTO, CongestionWindow, RttEstimator
from hyphal.identity import address_bytes_for_public_key
from hyphal.wire import bus as wire

#: A chunk sent this many sends before an acknowledged one is lost (RACK-style).
DUPTHRESH = 3
MAX_BUSY_BACKOFF = 30.0

InflightEntry = tuple[int, float, bool]  # (send sequence number, sent at, retransmission)


class PeerInflight:
    """Bytes in flight per destination, across all its transfers, under one cap."""

    def __init__(self, cap: int, counters: dict[str, int]) -> None:
        self.cap = cap
        self.counters = counters  # the core's stats: "retransmits" is counted here
        self._bytes: dict[bytes, int] = {}

    def get(self, dst: bytes) -> int:
        return self._bytes.get(dst, 0)

    def room(self, dst: bytes, size: int) -> bool:
        """Whether ``size`` more bytes may be in flight to ``dst`` (one chunk always may)."""
        used = self.get(dst)
        return used == 0 or used + size <= self.cap

    def add(self, dst: bytes, size: int) -> None:
        self._bytes[dst] = self.get(dst) + size

    def sub(self, dst: bytes, size: int) -> None:
        left = self.get(dst) - size
        if left > 0:
            self._bytes[dst] = left
        else:
            self._bytes.pop(dst, None)


@dataclass(eq=False)
class OutboundTransfer:
    """One message being sent (or, once final, its status record)."""

    msg_id: bytes
    reply: bool
    dst: bytes
    topic: bytes
    payload: bytes
    digest: bytes
    total: int
    chunk_size: int
    count: int
    created_wall: float
    deadline: float
    deadline_wall: float
    peers: PeerInflight = field(repr=False)
    #: The overlay address the caller named, when it named one whose owner was unknown (the
    #: transfer then starts ``WAITING`` with ``dst == b""`` until the core resolves it).
    dst_ip: bytes = b""
    state: OutState = OutState.QUEUED
    reason: str | None = None
    acked: bytearray = field(default_factory=bytearray)
    acked_count: int = 0
    acked_cum: int = 0
    next_new: int = 0
    inflight: dict[int, InflightEntry] = field(default_factory=dict)
    inflight_bytes: int = 0
    lost: deque[int] = field(default_factory=deque)
    retransmitted: bytearray = field(default_factory=bytearray)
    send_seq: int = 0
    recovery_seq: int = -1
    rtt: RttEstimator = field(default_factory=RttEstimator)
    cwnd: CongestionWindow = field(default_factory=CongestionWindow)
    rwnd: int = 1
    rto_at: float | None = None
    init_sent_at: float | None = None
    init_retransmitted: bool = False
    init_ever_sent: bool = False
    busy_until: float | None = None
    busy_backoff: float = 0.0
    finished_wall: float | None = None
    next_event: float = math.inf

    @property
    def key(self) -> OutKey:
        return (self.msg_id, self.reply)

    def chunk_len(self, index: int) -> int:
        return min(self.chunk_size, self.total - index * self.chunk_size)

    def reset_progress(self) -> None:
        self.acked = bytearray(self.count)
        self.retransmitted = bytearray(self.count)
        self.acked_count = 0
        self.acked_cum = 0
        self.next_new = 0
        self.inflight.clear()
        self.inflight_bytes = 0
        self.lost.clear()
        self.rwnd = 1

    def next_timer(self) -> float:
        """When this transfer's deadline, RTO or BUSY backoff is next due."""
        when = math.inf
        if self.state not in FINAL_STATES:
            when = self.deadline
            if self.rto_at is not None:
                when = min(when, self.rto_at)
            if self.busy_until is not None:
                when = min(when, self.busy_until)
        return when

    # ------------------------------------------------------------------ sending
    def send_init(self, now: float, actions: list[Action]) -> None:
        """Send (or resend) INIT, carrying chunk 0 when it is unacknowledged and fits."""
        data: bytes | memoryview = b""
        if self.count and not self.acked[0]:
            size = self.chunk_len(0)
            if 0 in self.inflight:
                data = memoryview(self.payload)[:size]
            elif self.peers.room(self.dst, size):
                data = memoryview(self.payload)[:size]
                self.mark_sent(0, now, retransmit=self.next_new > 0)
                self.next_new = max(self.next_new, 1)
        if self.init_ever_sent:
            self.init_retransmitted = True
        self.init_ever_sent = True
        self.init_sent_at = now
        lifetime = max(0, math.ceil(self.deadline - now))
        init = wire.Init(
            self.msg_id,
            self.reply,
            self.total,
            self.chunk_size,
            lifetime,
            self.digest,
            self.topic,
            bytes(data),
        )
        actions.append(SendPacket(self.dst, wire.encode(init)))
        if self.rto_at is None:
            self.rto_at = now + self.rtt.rto

    def mark_sent(self, index: int, now: float, *, retransmit: bool) -> None:
        size = self.chunk_len(index)
        self.send_seq += 1
        if retransmit:
            self.retransmitted[index] = 1
        self.inflight.pop(index, None)
        self.inflight[index] = (self.send_seq, now, retransmit)
        self.inflight_bytes += size
        self.peers.add(self.dst, size)

    def unmark(self, index: int) -> InflightEntry | None:
        """Chunk ``index`` is no longer in flight (acknowledged, lost or abandoned)."""
        entry = self.inflight.pop(index, None)
        if entry is not None:
            size = self.chunk_len(index)
            self.inflight_bytes -= size
            self.peers.sub(self.dst, size)
        return entry

    def drop_inflight(self) -> None:
        for index in list(self.inflight):
            self.unmark(index)

    def pump(self, now: float, actions: list[Action]) -> None:
        """Send chunks while the congestion window, receive window and peer cap allow."""
        if self.state != OutState.SENDING:
            return
        limit = min(self.cwnd.chunks, self.rwnd)
        view = memoryview(self.payload)
        while len(self.inflight) < limit:
            retransmit = False
            if self.lost:
                index = self.lost[0]
                if self.acked[index] or index in self.inflight:
                    self.lost.popleft()
                    continue
                retransmit = True
            elif self.next_new < self.count and self.next_new < self.acked_cum + self.rwnd:
                index = self.next_new
            else:
                break
            size = self.chunk_len(index)
            if not self.peers.room(self.dst, size):
                break
            if retransmit:
                self.lost.popleft()
                self.peers.counters["retransmits"] += 1
            else:
                self.next_new += 1
            self.mark_sent(index, now, retransmit=retransmit)
            start = index * self.chunk_size
            actions.append(
                SendPacket(
                    self.dst,
                    wire.encode_chunk(self.msg_id, self.reply, index, view[start : start + size]),
                )
            )
            if self.rto_at is None:
                self.rto_at = now + self.rtt.rto

    # ------------------------------------------------------------------ receiver feedback
    def on_ack(self, p: wire.Ack, now: float, actions: list[Action]) -> bool:
        """Process an ACK (the state must be pending or sending); True if chunks were newly
        acknowledged, so the destination's other transfers may use the freed room."""
        if self.state == OutState.PENDING:
            self.state = OutState.SENDING
            self.busy_backoff = 0.0
            actions.append(StatusChanged(self.msg_id, self.reply, OutState.SENDING))
            if self.init_sent_at is not None and not self.init_retransmitted:
                self.rtt.sample(now - self.init_sent_at)
        self.rwnd = max(1, min(p.window, 1 << 16))
        newest: InflightEntry | None = None
        limit = self.next_new
        cum = min(p.cumulative, limit)
        acked = self.acked
        # Only chunks not yet acknowledged are visited (bytearray.find skips the rest in C), so
        # an ACK costs O(newly acknowledged chunks), however many SACK ranges it repeats.
        if cum > self.acked_cum:
            index = acked.find(0, self.acked_cum, cum)
            while index >= 0:
                newest = self._ack_chunk(index, newest)
                index = acked.find(0, index + 1, cum)
            self.acked_cum = cum
        for start, end in p.ranges:
            end = min(end, limit)
            index = acked.find(0, start, end) if start < end else -1
            while index >= 0:
                newest = self._ack_chunk(index, newest)
                index = acked.find(0, index + 1, end)
        if newest is not None:
            seq, sent_at, retransmitted = newest
            if not retransmitted:
                self.rtt.sample(now - sent_at)
            self.on_loss(seq)
            self.rto_at = now + self.rtt.rto if self.inflight else None
        self.pump(now, actions)
        if self.rto_at is None and (self.inflight or self.acked_count == self.count or self.lost):
            self.rto_at = now + self.rtt.rto  # probe for RECEIVED / stalled window
        return newest is not None

    def _ack_chunk(self, index: int, newest: InflightEntry | None) -> InflightEntry | None:
        if self.acked[index]:
            return newest
        self.acked[index] = 1
        self.acked_count += 1
        self.cwnd.on_ack(1)
        entry = self.unmark(index)
        if entry is not None and (newest is None or entry[0] > newest[0]):
            return entry
        return newest

    def on_loss(self, acked_seq: int) -> None:
        """RACK-style: chunks sent ``DUPTHRESH`` sends before ``acked_seq`` are lost; the window
        shrinks once per loss episode."""
        lost_any = False
        while self.inflight:
            index = next(iter(self.inflight))
            if self.inflight[index][0] > acked_seq - DUPTHRESH:
                break
            entry = self.unmark(index)
            self.lost.append(index)
            if entry is not None and entry[0] > self.recovery_seq:
                lost_any = True
        if lost_any:
            self.cwnd.on_loss()
            self.recovery_seq = self.send_seq

    def on_busy(self, now: float) -> bool:
        """The receiver answered INIT with BUSY: forget progress and back off (False: stale)."""
        if self.state == OutState.SENDING:
            return False  # the receiver has our state; a stale BUSY
        self.drop_inflight()
        self.reset_progress()
        self.busy_backoff = min(max(1.0, self.busy_backoff * 2), MAX_BUSY_BACKOFF)
        self.busy_until = now + self.busy_backoff
        self.rto_at = None
        return True

    def on_unknown(self, now: float, actions: list[Action]) -> bool:
        """The receiver lost the transfer: start again from INIT (False: nothing to do)."""
        if self.state == OutState.PENDING:
            return False  # a chunk overtook the INIT; the INIT will create the state
        self.drop_inflight()
        self.reset_progress()
        self.state = OutState.PENDING
        self.rto_at = None
        self.send_init(now, actions)
        return True

    @property
    def stalled(self) -> bool:
        """INIT sent and retransmitted without an answer (the receiver may be unreachable)."""
        return self.state == OutState.PENDING and self.rtt.backoffs > 0 and self.busy_until is None

    def kick(self, now: float, actions: list[Action]) -> bool:
        """A route to the destination appeared: resend INIT now, with the backoff undone."""
        if not self.stalled:
            return False
        rtt = self.rtt
        rtt.backoffs = 0
        if rtt.srtt is None:
            rtt.rto = INITIAL_RTO
        else:
            rtt.rto = min(max(rtt.srtt + 4 * rtt.rttvar, rtt.min_rto), rtt.max_rto)
        self.rto_at = None
        self.send_init(now, actions)
        return True

    def on_timeout(self, now: float, actions: list[Action]) -> None:
        """The BUSY backoff or the retransmission timer expired (the deadline is the core's)."""
        if self.busy_until is not None and now >= self.busy_until:
            self.busy_until = None
            self.state = OutState.PENDING
            self.send_init(now, actions)
            return
        if self.rto_at is not None and now >= self.rto_at:
            self.rtt.backoff()
            self.rto_at = None
            if self.state == OutState.PENDING:
                self.send_init(now, actions)
                return
            if self.inflight:
                self.cwnd.on_timeout()
                self.recovery_seq = self.send_seq
                for index in list(self.inflight):
                    self.unmark(index)
                    self.lost.append(index)
                self.pump(now, actions)
            elif self.lost or self.acked_count == self.count or self.next_new < self.count:
                # Nothing in flight: probe with INIT (answered by ACK or RECEIVED).
                self.send_init(now, actions)
            if self.rto_at is None and self.state == OutState.SENDING:
                self.rto_at = now + self.rtt.rto

    # ------------------------------------------------------------------ end
    def finish(self, state: OutState, reason: str | None, wall: float) -> None:
        """Enter a final state; the payload and per-chunk state are dropped."""
        self.drop_inflight()
        self.state = state
        self.reason = reason
        self.rto_at = None
        self.busy_until = None
        self.finished_wall = wall
        if state != OutState.ABORTED:
            self.acked_count = self.count
            self.next_new = self.count
        self.payload = b""
        self.acked = bytearray()
        self.retransmitted = bytearray()
        self.lost.clear()

    def status(self) -> MessageStatus:
        state = self.state
        reason = self.reason
        if state == OutState.WAITING:
            state = OutState.PENDING
            reason = REASON_WAITING.format(address=IPv6Address(self.dst_ip))
        elif state == OutState.QUEUED:
            state = OutState.PENDING
        return MessageStatus(
            msg_id=self.msg_id,
            reply=self.reply,
            dst_pk=self.dst or None,
            dst_ip=self.dst_ip or address_bytes_for_public_key(self.dst),
            state=state,
            pending=self.count - self.next_new,
            sent=self.next_new - self.acked_count,
            acked=self.acked_count,
            created=self.created_wall,
            deadline=self.deadline_wall,
            msg_len=self.total,
            reason=reason,
        )
