"""Sans-IO message bus core: reliable, flow-controlled transfer of arbitrary-size messages.

``MessageCore`` never reads a clock, sleeps or touches a socket. Its optional SQLite store is read
once, at construction; with ``defer_writes`` every later write is a persistence action (see
``hyphal.bus.persist``) placed before the actions that depend on it, so the adapter can make an
inbox row durable before RECEIVED goes out; without it the core writes the store itself,
synchronously. Every entry point takes ``now`` (monotonic seconds) and returns a list of actions
for the adapter:

* :class:`SendPacket` - hand ``body`` (a bus packet, see ``hyphal.wire.bus``) to the data path for
  the node with public key ``dst``.
* :class:`MessageArrived` - the inbox has a new message (wake long-poll waiters).
* :class:`ReplyArrived` - a reply for an id registered with :meth:`MessageCore.expect_reply`.
* :class:`ForwardMessage` - a message for a topic with a forward socket (held in the inbox).
* :class:`VerifyMessage` - hash a large received message off the loop, answer with
  :meth:`MessageCore.on_verified`.
* :class:`StatusChanged` - an outbound message changed state.
* :class:`~hyphal.bus.persist.StoreInbox`, ``DeleteInbox``, ``StoreOutbox``, ``FinishOutbox``,
  ``DeleteOutbox`` - store writes (only with ``defer_writes``); what follows one in the list must
  wait until it is durable.

The core dispatches packets, enforces :class:`~hyphal.bus.limits.Limits`, runs one timer heap
and owns the outbox queues, status records, inbox, leases and read receipts. One transfer's
behaviour lives in its own object: :class:`~hyphal.bus.outbound.OutboundTransfer` (windows,
ACKs, loss, retransmission) and :class:`~hyphal.bus.inbound.InboundTransfer` with
:class:`~hyphal.bus.inbound.Incoming` (admission, reassembly, completion). The action classes
are defined in ``hyphal.bus.actions`` and re-exported here.

Sender: INIT (carrying chunk 0) -> receiver admission control -> ACK (cumulative + selective
ranges + receive window) -> chunks inside min(congestion window, receive window, per-peer
in-flight cap) -> RECEIVED once the receiver has verified the BLAKE3 digest -> READ when the
receiving application pops it. Lost chunks are detected by RACK-style reordering (three later
sends acknowledged) or by the RFC 6298 retransmission timer with exponential backoff. The
caller's deadline aborts the transfer (ABORT is sent to the peer), with a reason saying how far
it got.

A destination that is not reachable now is not an error: a message to an overlay address whose
owner is unknown waits (``waiting``, reported ``pending``) and one to a key keeps resending INIT
until its deadline. When the node learns routes it calls :meth:`MessageCore.check_routes` with a
lookup (prefix -> owner key): waiting messages start, and stalled INITs are resent at once.
"""

from __future__ import annotations

import heapq
import math
import os
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv6Address

from hyphal.bus.actions import (
    FINAL_STATES,
    REASON_DEADLINE,
    REASON_NO_ANSWER,
    REASON_NO_OWNER,
    REASON_TEXT,
    REASON_UNFINISHED,
    Action,
    ForwardMessage,
    InKey,
    MessageArrived,
    MessageStatus,
    OutKey,
    OutState,
    ReplyArrived,
    SendPacket,
    StatusChanged,
    VerifyMessage,
)
from hyphal.bus.chunks import chunk_count
from hyphal.bus.digest import PARALLEL_HASH_MIN, message_digest
from hyphal.bus.errors import BusError
from hyphal.bus.inbound import REFUSALS, Accepted, InboundTransfer, Incoming
from hyphal.bus.inbox import InboundMessage, Inbox
from hyphal.bus.limits import Limits
from hyphal.bus.outbound import OutboundTransfer, PeerInflight
from hyphal.bus.persist import (
    DeleteInbox,
    DeleteOutbox,
    FinishOutbox,
    Persist,
    StoreInbox,
    StoreOutbox,
    apply,
)
from hyphal.bus.store import MessageStore, OutboxRecord
from hyphal.bus.topics import MAX_TOPIC_LEN, TopicTable
from hyphal.identity import prefix64_for_public_key
from hyphal.wire import bus as wire
from hyphal.wire.bus import AbortReason
from hyphal.wire.errors import DecodeError

__all__ = [
    "FINAL_STATES",
    "PARALLEL_HASH_MIN",
    "REASON_DEADLINE",
    "REASON_TEXT",
    "Action",
    "BusError",
    "DuplicateReply",
    "ForwardMessage",
    "InKey",
    "Limits",
    "MessageArrived",
    "MessageCore",
    "MessageStatus",
    "MessageTooLarge",
    "OutKey",
    "OutState",
    "OutboxFull",
    "ReplyArrived",
    "SendPacket",
    "StatusChanged",
    "UnknownMessage",
    "VerifyMessage",
    "message_digest",
]

KEY_SIZE = 32
ADDRESS_SIZE = 16
READ_NOTICE_TRIES = 6
#: Answers which node owns an overlay /64 now (its public key), e.g. the router's selected route.
OwnerLookup = Callable[[bytes], "bytes | None"]


class MessageTooLarge(BusError):
    status = 413


class OutboxFull(BusError):
    status = 429


class UnknownMessage(BusError):
    status = 404


class DuplicateReply(BusError):
    status = 409


class TimerKind(StrEnum):
    """What a timer-heap entry is for."""

    OUT = "out"  # an outbound transfer's deadline / RTO / BUSY backoff
    IN = "in"  # an incoming transfer's deadline / idle timeout
    READ = "read"  # resending a READ notice
    LEASE = "lease"  # a taken message returns to the inbox
    INBOX = "inbox"  # the oldest inbox message's TTL
    GC = "gc"  # forgetting final status records


@dataclass(eq=False)
class _Lease:
    msg_id: bytes
    seq: int
    expires: float
    next_event: float = math.inf


@dataclass(eq=False)
class _ReadNotice:
    key: InKey
    next_send: float
    tries: int = 0
    next_event: float = math.inf


_Timed = (
    OutboundTransfer | InboundTransfer | _ReadNotice | _Lease
)  # what a timer-heap entry can point at


class MessageCore:
    """The message bus state machine of one node."""

    def __init__(
        self,
        public_key: bytes,
        now: float,
        *,
        limits: Limits | None = None,
        store: MessageStore | None = None,
        wall_offset: float = 0.0,
        id_source: Callable[[], bytes] | None = None,
        topics: TopicTable | None = None,
        defer_large_hashes: bool = False,
        defer_writes: bool = False,
    ) -> None:
        if len(public_key) != KEY_SIZE:
            raise ValueError("public key must be 32 bytes")
        self.public_key = public_key
        self.limits = limits or Limits()
        self.store = store
        self.wall_offset = wall_offset
        self.topics = topics or TopicTable()
        self.defer_large_hashes = defer_large_hashes
        self.defer_writes = defer_writes
        self._new_id = id_source or (lambda: os.urandom(wire.ID_SIZE))
        self.inbox = Inbox()
        self._out: dict[OutKey, OutboundTransfer] = {}
        self._done: OrderedDict[OutKey, OutboundTransfer] = OrderedDict()
        self._queued: dict[bytes, deque[OutKey]] = {}
        self._active_per_dst: dict[bytes, int] = {}
        # Activated (pending or sending) transfers per destination: at most
        # max_active_per_destination each, so pumping a peer never scans the whole outbox.
        self._active_by_dst: dict[bytes, dict[OutKey, OutboundTransfer]] = {}
        # Messages to an overlay address whose owner is unknown, per /64 (bounded both ways).
        self._waiting: dict[bytes, deque[OutKey]] = {}
        # Destinations with an unanswered INIT -> whether a route to them was seen last check.
        self._stalled: OrderedDict[bytes, bool] = OrderedDict()
        self._own_prefix = prefix64_for_public_key(public_key)
        self.outbox_bytes = 0
        self._incoming = Incoming(self.limits)
        self._in = self._incoming.transfers
        self._leases: dict[bytes, _Lease] = {}
        self._completed: OrderedDict[InKey, bool] = OrderedDict()
        self._reply_routes: OrderedDict[bytes, bytes] = OrderedDict()
        self._read_notices: OrderedDict[InKey, _ReadNotice] = OrderedDict()
        self._reply_waiters: dict[bytes, int] = {}
        self._heap: list[tuple[float, int, TimerKind, _Timed | None]] = []
        self._heap_seq = 0
        self._inbox_timer_at = math.inf
        self.stats: dict[str, int] = {
            "decode_errors": 0,
            "ignored": 0,
            "retransmits": 0,
            "inbox_expired": 0,
            "leases_expired": 0,
            # one per reason an incoming transfer was refused at its INIT (refused_inbox_full...)
            **{f"refused_{r.name.lower()}": 0 for r in REFUSALS},
        }
        self._peers = PeerInflight(self.limits.max_inflight_per_peer, self.stats)
        if store is not None:
            self._load(store, now)

    # ------------------------------------------------------------------ helpers
    def wall(self, now: float) -> float:
        return now + self.wall_offset

    def _send(self, actions: list[Action], dst: bytes, packet: wire.BusPacket) -> None:
        actions.append(SendPacket(dst, wire.encode(packet)))

    def _persist(self, actions: list[Action], op: Persist) -> None:
        """Write to the store: now, or (``defer_writes``) as an action before what follows."""
        if self.store is None:
            return
        if self.defer_writes:
            actions.append(op)
        else:
            apply(self.store, op)

    def _push_timer(self, kind: TimerKind, obj: _Timed | None, when: float) -> None:
        if when < math.inf:
            self._heap_seq += 1
            heapq.heappush(self._heap, (when, self._heap_seq, kind, obj))
            live = len(self._out) + len(self._in) + len(self._read_notices) + len(self._leases)
            if len(self._heap) > 4 * live + 4096:
                self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        heap: list[tuple[float, int, TimerKind, _Timed | None]] = []
        for t in self._out.values():
            heap.append((t.next_event, 0, TimerKind.OUT, t))
        for r in self._in.values():
            heap.append((r.next_event, 0, TimerKind.IN, r))
        for n in self._read_notices.values():
            heap.append((n.next_event, 0, TimerKind.READ, n))
        for lease in self._leases.values():
            heap.append((lease.next_event, 0, TimerKind.LEASE, lease))
        heap.append((self._inbox_timer_at, 0, TimerKind.INBOX, None))
        if self._done:
            first = next(iter(self._done.values()))
            heap.append((self._done_expiry(first), 0, TimerKind.GC, None))
        self._heap = [e for e in heap if e[0] < math.inf]
        heapq.heapify(self._heap)

    def _schedule_out(self, t: OutboundTransfer) -> None:
        when = t.next_timer()
        if when != t.next_event:
            t.next_event = when
            self._push_timer(TimerKind.OUT, t, when)

    def _schedule_in(self, r: InboundTransfer) -> None:
        when = r.expires(self.limits.incoming_idle_timeout)
        if when != r.next_event:
            r.next_event = when
            self._push_timer(TimerKind.IN, r, when)

    def _done_expiry(self, t: OutboundTransfer) -> float:
        return (t.finished_wall or 0.0) - self.wall_offset + self.limits.status_ttl

    def next_deadline(self) -> float:
        """When :meth:`on_timer` must be called next (``math.inf`` when nothing is pending)."""
        heap = self._heap
        while heap:
            when, _, kind, obj = heap[0]
            if self._timer_valid(when, kind, obj):
                return when
            heapq.heappop(heap)
        return math.inf

    def _timer_valid(self, when: float, kind: TimerKind, obj: _Timed | None) -> bool:
        if obj is not None:
            if obj.next_event != when:
                return False
            if isinstance(obj, OutboundTransfer):
                return self._out.get(obj.key) is obj
            if isinstance(obj, InboundTransfer):
                return self._in.get(obj.key) is obj
            if isinstance(obj, _ReadNotice):
                return self._read_notices.get(obj.key) is obj
            return self._leases.get(obj.msg_id) is obj
        if kind == TimerKind.INBOX:
            return when == self._inbox_timer_at
        return bool(self._done)

    # ------------------------------------------------------------------ sending API
    def send(
        self,
        dst: bytes,
        payload: bytes,
        now: float,
        *,
        topic: bytes = b"",
        deadline: float | None = None,
        reply_to: bytes | None = None,
        digest: bytes | None = None,
    ) -> tuple[bytes, list[Action]]:
        """Queue a message for ``dst``; returns its id and the actions to run.

        ``dst`` is the receiver's public key (32 bytes) or, when the caller named an overlay
        address that no known node owns yet, that address (16 bytes, in 400::/7): the message
        then waits (state ``pending``, bounded by ``limits.max_waiting_*``) until
        :meth:`check_routes` finds its owner, or fails at its deadline. ``deadline`` is seconds
        from now (default ``limits.default_deadline``). ``reply_to`` makes
        the message a reply to that received message id (the reply reuses the id). ``digest`` is
        ``message_digest(payload)`` when the caller already computed it (off the event loop).
        """
        lim = self.limits
        if len(dst) == ADDRESS_SIZE:
            self._check_address(dst)
        elif len(dst) != KEY_SIZE:
            raise BusError("destination must be a 32-byte public key or a 16-byte overlay address")
        if dst == self.public_key:
            raise BusError("cannot send a message to this node itself")
        if len(topic) > MAX_TOPIC_LEN:
            raise BusError(f"a topic has at most {MAX_TOPIC_LEN} bytes")
        if len(payload) > lim.max_message_size:
            raise MessageTooLarge(
                f"message of {len(payload)} bytes exceeds the limit of {lim.max_message_size}"
            )
        if (
            self.outbox_bytes + len(payload) > lim.max_outbox_bytes
            or len(self._out) >= lim.max_outbox_count
        ):
            raise OutboxFull("outbox full; retry later")
        span = lim.default_deadline if deadline is None else deadline
        if not (0 < span <= lim.max_deadline) or math.isnan(span):
            raise BusError(f"deadline must be in (0, {lim.max_deadline}] seconds")
        if reply_to is not None:
            if len(reply_to) != wire.ID_SIZE:
                raise BusError("message id must be 8 bytes")
            msg_id, reply = reply_to, True
            if (msg_id, True) in self._out:
                raise DuplicateReply("a reply to this message is still being sent")
            self._done.pop((msg_id, True), None)
        else:
            msg_id, reply = self._new_id(), False
            while (msg_id, False) in self._out or (msg_id, False) in self._done:
                msg_id = self._new_id()
        payload = bytes(payload)
        t = self._new_out(
            msg_id, reply, dst, topic, payload, self.wall(now), self.wall(now) + span, now, digest
        )
        actions: list[Action] = []
        if self.store is not None:
            record = OutboxRecord(
                msg_id,
                reply,
                dst,  # an address while its owner is unknown; loading resolves it again
                topic,
                payload,
                len(payload),
                t.created_wall,
                t.deadline_wall,
                OutState.PENDING,
            )
            self._persist(actions, StoreOutbox(record))
        if t.dst_ip:
            self._wait(t)
        else:
            self._enqueue(t, now, actions)
        return msg_id, actions

    def _check_address(self, address: bytes) -> None:
        """An address destination must lie in 400::/7, have room to wait, and not be ours."""
        if address[0] & 0xFE != 0x04:
            raise BusError("destination address is not an overlay address (400::/7)")
        prefix = address[:8]
        if prefix == self._own_prefix:
            raise BusError("cannot send a message to this node itself")
        queue = self._waiting.get(prefix)
        if queue is None and len(self._waiting) >= self.limits.max_waiting_destinations:
            raise OutboxFull(
                f"{len(self._waiting)} unreachable destinations already have messages waiting "
                "for a route; retry later"
            )
        if queue is not None and len(queue) >= self.limits.max_waiting_per_destination:
            raise OutboxFull(
                f"{len(queue)} messages already wait for a route to this /64; retry later"
            )

    def _wait(self, t: OutboundTransfer) -> None:
        """Hold ``t`` until the owner of its address is known (or its deadline passes)."""
        t.state = OutState.WAITING
        self._waiting.setdefault(t.dst_ip[:8], deque()).append(t.key)
        self._schedule_out(t)

    @property
    def watching(self) -> bool:
        """True when :meth:`check_routes` has anything to look up."""
        return bool(self._waiting or self._stalled)

    def check_routes(self, owner_of: OwnerLookup, now: float) -> list[Action]:
        """The node learned routes: start messages whose destination's owner is now known, and
        resend at once the INIT of transfers to destinations that just became reachable.

        ``owner_of(prefix64)`` answers which public key owns a /64 now (None: no route). Costs one
        lookup per waiting /64 and per watched destination, both bounded by ``limits``.
        """
        actions: list[Action] = []
        for prefix in list(self._waiting):
            owner = owner_of(prefix)
            if owner is not None:
                self._resolve(prefix, owner, now, actions)
        for dst, seen in list(self._stalled.items()):
            active = self._active_by_dst.get(dst)
            stalled = [t for t in active.values() if t.stalled] if active else []
            if not stalled:
                del self._stalled[dst]
                continue
            routed = owner_of(prefix64_for_public_key(dst)) == dst
            self._stalled[dst] = routed
            if routed and not seen:
                for t in stalled:
                    t.kick(now, actions)
                    self._schedule_out(t)
        return actions

    def _resolve(self, prefix: bytes, owner: bytes, now: float, actions: list[Action]) -> None:
        queue = self._waiting.pop(prefix)
        if len(owner) != KEY_SIZE or prefix64_for_public_key(owner) != prefix:
            self._waiting[prefix] = queue  # a lookup that does not own the /64: keep waiting
            return
        for key in queue:
            t = self._out.get(key)
            if t is None or t.state != OutState.WAITING:
                continue
            if owner == self.public_key:
                self._finish_out(
                    t, OutState.ABORTED, "the address belongs to this node", now, actions
                )
                continue
            t.dst = owner
            t.state = OutState.QUEUED
            self._enqueue(t, now, actions)

    def reply(
        self,
        msg_id: bytes,
        payload: bytes,
        now: float,
        *,
        topic: bytes = b"",
        dst: bytes | None = None,
        deadline: float | None = None,
    ) -> list[Action]:
        """Reply to a received message; ``dst`` defaults to the sender of that message."""
        if dst is None:
            dst = self._reply_routes.get(msg_id)
            if dst is None:
                raise UnknownMessage("no received message with this id is known")
        _, actions = self.send(dst, payload, now, topic=topic, deadline=deadline, reply_to=msg_id)
        return actions

    def _new_out(
        self,
        msg_id: bytes,
        reply: bool,
        dst: bytes,
        topic: bytes,
        payload: bytes,
        created_wall: float,
        deadline_wall: float,
        now: float,
        digest: bytes | None = None,
    ) -> OutboundTransfer:
        chunk_size = self.limits.chunk_size
        dst_ip = b""
        if len(dst) == ADDRESS_SIZE:
            dst, dst_ip = b"", dst
        t = OutboundTransfer(
            msg_id=msg_id,
            reply=reply,
            dst=dst,
            dst_ip=dst_ip,
            topic=topic,
            payload=payload,
            digest=message_digest(payload) if digest is None else digest,
            total=len(payload),
            chunk_size=chunk_size,
            count=chunk_count(len(payload), chunk_size),
            created_wall=created_wall,
            deadline=deadline_wall - self.wall_offset,
            deadline_wall=deadline_wall,
            peers=self._peers,
        )
        t.reset_progress()
        t.cwnd.ceiling = max(4.0, self.limits.max_inflight_per_peer / chunk_size)
        self._out[t.key] = t
        self.outbox_bytes += t.total
        return t

    def _enqueue(self, t: OutboundTransfer, now: float, actions: list[Action]) -> None:
        if self._active_per_dst.get(t.dst, 0) < self.limits.max_active_per_destination:
            self._activate(t, now, actions)
        else:
            t.state = OutState.QUEUED
            self._queued.setdefault(t.dst, deque()).append(t.key)
            self._schedule_out(t)

    def _activate(self, t: OutboundTransfer, now: float, actions: list[Action]) -> None:
        self._active_per_dst[t.dst] = self._active_per_dst.get(t.dst, 0) + 1
        self._active_by_dst.setdefault(t.dst, {})[t.key] = t
        t.state = OutState.PENDING
        t.send_init(now, actions)
        self._schedule_out(t)

    def _pump_peer(self, dst: bytes, now: float, actions: list[Action]) -> None:
        active = self._active_by_dst.get(dst)
        if not active:
            return
        for t in list(active.values()):
            if t.state == OutState.SENDING:
                t.pump(now, actions)
                self._schedule_out(t)

    def _finish_out(
        self,
        t: OutboundTransfer,
        state: OutState,
        reason: str | None,
        now: float,
        actions: list[Action],
    ) -> None:
        was_active = t.state in (OutState.PENDING, OutState.SENDING)
        was_queued = t.state == OutState.QUEUED
        if t.state == OutState.WAITING:
            waiting = self._waiting.get(t.dst_ip[:8])
            if waiting is not None and t.key in waiting:
                waiting.remove(t.key)
                if not waiting:
                    del self._waiting[t.dst_ip[:8]]
        finished = self.wall(now)
        t.finish(state, reason, finished)
        self.outbox_bytes -= t.total
        del self._out[t.key]
        self._remember_done(t, actions)
        self._persist(actions, FinishOutbox(t.msg_id, t.reply, state, reason, finished))
        actions.append(StatusChanged(t.msg_id, t.reply, state))
        if was_queued:
            queue = self._queued.get(t.dst)
            if queue is not None and t.key in queue:
                queue.remove(t.key)
        if was_active:
            active = self._active_by_dst.get(t.dst)
            if active is not None:
                active.pop(t.key, None)
                if not active:
                    del self._active_by_dst[t.dst]
            left = self._active_per_dst.get(t.dst, 1) - 1
            if left > 0:
                self._active_per_dst[t.dst] = left
            else:
                self._active_per_dst.pop(t.dst, None)
            self._activate_queued(t.dst, now, actions)
            self._pump_peer(t.dst, now, actions)

    def _activate_queued(self, dst: bytes, now: float, actions: list[Action]) -> None:
        queue = self._queued.get(dst)
        while queue and self._active_per_dst.get(dst, 0) < self.limits.max_active_per_destination:
            nxt = self._out.get(queue.popleft())
            if nxt is not None and nxt.state == OutState.QUEUED:
                self._activate(nxt, now, actions)
        if queue is not None and not queue:
            self._queued.pop(dst, None)

    def _remember_done(self, t: OutboundTransfer, actions: list[Action]) -> None:
        self._done.pop(t.key, None)
        self._done[t.key] = t
        while len(self._done) > self.limits.max_status_records:
            _, old = self._done.popitem(last=False)
            self._persist(actions, DeleteOutbox(old.msg_id, old.reply))
        if len(self._done) == 1:
            self._push_timer(TimerKind.GC, None, self._done_expiry(t))

    # ------------------------------------------------------------------ receiving API
    def expect_reply(self, msg_id: bytes) -> None:
        """A local caller waits for a reply to ``msg_id``: deliver it as ReplyArrived."""
        self._reply_waiters[msg_id] = self._reply_waiters.get(msg_id, 0) + 1

    def cancel_reply(self, msg_id: bytes) -> None:
        left = self._reply_waiters.get(msg_id, 0) - 1
        if left > 0:
            self._reply_waiters[msg_id] = left
        else:
            self._reply_waiters.pop(msg_id, None)

    def pop(
        self, now: float, topic: bytes | None = None, *, peek: bool = False
    ) -> tuple[InboundMessage | None, list[Action]]:
        """Oldest inbox message whose topic starts with ``topic``; pop sends a read receipt."""
        found = self.inbox.find(topic)
        if found is None:
            return None, []
        seq, message = found
        if peek:
            return message, []
        actions: list[Action] = []
        self._remove_read(seq, message, now, actions)
        return message, actions

    def take(self, now: float, topic: bytes | None = None) -> InboundMessage | None:
        """Lease the oldest matching message: hidden from other readers, not deleted, no READ.

        :meth:`ack` deletes it and sends READ; :meth:`release` (or ``limits.lease_time`` passing)
        returns it to the inbox, still first in line (it keeps its place in arrival order).
        """
        found = self.inbox.find(topic, exclude_ids=self._leases)
        if found is None:
            return None
        seq, message = found
        self._hold(seq, message, now + self.limits.lease_time)
        return message

    def _hold(self, seq: int, message: InboundMessage, expires: float) -> None:
        self.inbox.lease(seq)
        lease = _Lease(message.msg_id, seq, expires)
        lease.next_event = expires
        self._leases[message.msg_id] = lease
        self._push_timer(TimerKind.LEASE, lease, expires)

    def ack(self, msg_id: bytes, now: float) -> tuple[bool, list[Action]]:
        """The client has the leased message ``msg_id``: delete it and send READ."""
        lease = self._leases.pop(msg_id, None)
        actions: list[Action] = []
        if lease is None:
            return False, actions
        lease.next_event = math.inf
        message = self.inbox.get(lease.seq)
        if message is None:
            return False, actions
        self._remove_read(lease.seq, message, now, actions)
        return True, actions

    def release(self, msg_id: bytes) -> list[Action]:
        """Give a leased message back to the inbox (it is the next one read again)."""
        lease = self._leases.get(msg_id)
        actions: list[Action] = []
        if lease is not None:
            self._end_lease(lease, actions)
        return actions

    def _end_lease(self, lease: _Lease, actions: list[Action]) -> None:
        self._leases.pop(lease.msg_id, None)
        lease.next_event = math.inf
        self.inbox.unlease(lease.seq)
        message = self.inbox.get(lease.seq)
        if message is not None:
            actions.append(MessageArrived(message.topic))

    def _remove_read(
        self, seq: int, message: InboundMessage, now: float, actions: list[Action]
    ) -> None:
        self.inbox.remove(seq)
        self._persist(actions, DeleteInbox(seq))
        self._mark_read((message.src_pk, message.msg_id, message.reply), now, actions)

    def deliver_to_inbox(self, message: InboundMessage) -> list[Action]:
        """Put a message in the inbox and wake readers."""
        actions: list[Action] = []
        self._store_inbox(message, actions)
        actions.append(MessageArrived(message.topic))
        return actions

    def _store_inbox(self, message: InboundMessage, actions: list[Action]) -> int:
        seq = self.inbox.push(message)
        self._persist(actions, StoreInbox(seq, message))
        self._arm_inbox_ttl()
        return seq

    def _arm_inbox_ttl(self) -> None:
        oldest = self.inbox.oldest()
        when = math.inf
        if oldest is not None:
            when = oldest[1].received_at - self.wall_offset + self.limits.inbox_ttl
        if when != self._inbox_timer_at:
            self._inbox_timer_at = when
            self._push_timer(TimerKind.INBOX, None, when)

    def _expire_inbox(self, now: float, actions: list[Action]) -> None:
        """Drop messages older than ``limits.inbox_ttl`` (counted in ``stats``)."""
        cutoff = self.wall(now) - self.limits.inbox_ttl
        while (oldest := self.inbox.oldest()) is not None and oldest[1].received_at <= cutoff:
            seq, message = oldest
            lease = self._leases.get(message.msg_id)
            if lease is not None and lease.seq == seq:
                del self._leases[message.msg_id]
                lease.next_event = math.inf
            self.inbox.remove(seq)
            self._persist(actions, DeleteInbox(seq))
            self.stats["inbox_expired"] += 1
        self._arm_inbox_ttl()

    def _mark_read(self, key: InKey, now: float, actions: list[Action]) -> None:
        if key in self._completed:
            self._completed[key] = True
        notice = _ReadNotice(key, now)
        self._read_notices.pop(key, None)
        self._read_notices[key] = notice
        while len(self._read_notices) > self.limits.max_read_notices:
            self._read_notices.popitem(last=False)
        self._send_read(notice, now, actions)

    def _send_read(self, notice: _ReadNotice, now: float, actions: list[Action]) -> None:
        src, msg_id, reply = notice.key
        self._send(actions, src, wire.Read(msg_id, reply))
        notice.tries += 1
        if notice.tries >= READ_NOTICE_TRIES:
            self._read_notices.pop(notice.key, None)
            notice.next_event = math.inf
            return
        notice.next_send = now + min(2.0**notice.tries, 60.0)
        notice.next_event = notice.next_send
        self._push_timer(TimerKind.READ, notice, notice.next_event)

    # ------------------------------------------------------------------ status
    def status(self, msg_id: bytes) -> MessageStatus | None:
        """Status of an outbound message (an original first, then a reply with that id)."""
        for key in ((msg_id, False), (msg_id, True)):
            t = self._out.get(key) or self._done.get(key)
            if t is not None:
                return t.status()
        return None

    def incoming_progress(self, src: bytes, msg_id: bytes, reply: bool = False) -> int | None:
        """Cumulative chunk pointer of an incoming transfer (for tests and diagnostics)."""
        r = self._in.get((src, msg_id, reply))
        return None if r is None else r.reasm.cumulative

    def inflight_bytes(self, dst: bytes) -> int:
        return self._peers.get(dst)

    def memory_usage(self) -> dict[str, int]:
        """Counters of everything that grows with input (for tests and metrics)."""
        return {
            "inbox_bytes": self.inbox.bytes,
            "inbox_count": len(self.inbox),
            "incoming_transfers": len(self._in),
            "incoming_reserved": self._incoming.reserved,
            "incoming_allocated": sum(r.reasm.allocated for r in self._in.values()),
            "inbox_leased": len(self._leases),
            "completed_ids": len(self._completed),
            "read_notices": len(self._read_notices),
            "reply_routes": len(self._reply_routes),
            "outbox_bytes": self.outbox_bytes,
            "status_records": len(self._done),
            "waiting_destinations": len(self._waiting),
            "waiting_messages": sum(len(q) for q in self._waiting.values()),
            "watched_destinations": len(self._stalled),
            "timer_heap": len(self._heap),
        }

    # ------------------------------------------------------------------ packets
    def handle_packet(self, src: bytes, body: bytes, now: float) -> list[Action]:
        """Process one bus packet from the authenticated node ``src``; never raises."""
        if len(src) != KEY_SIZE or src == self.public_key:
            self.stats["ignored"] += 1
            return []
        try:
            packet = wire.decode(body)
        except DecodeError:
            self.stats["decode_errors"] += 1
            return []
        actions: list[Action] = []
        if isinstance(packet, wire.Init):
            self._on_init(src, packet, now, actions)
        elif isinstance(packet, wire.Chunk):
            self._on_chunk(src, packet, now, actions)
        elif isinstance(packet, wire.Ack):
            self._on_ack(src, packet, now, actions)
        elif isinstance(packet, wire.Received):
            self._on_received(src, packet, now, actions)
        elif isinstance(packet, wire.Read):
            self._on_read(src, packet, now, actions)
        elif isinstance(packet, wire.ReadAck):
            self._read_notices.pop((src, packet.msg_id, packet.reply), None)
        else:
            self._on_abort(src, packet, now, actions)
        return actions

    # receiver side
    def _reply_bypasses_acl(self, src: bytes, msg_id: bytes) -> bool:
        t = self._out.get((msg_id, False)) or self._done.get((msg_id, False))
        return (t is not None and t.dst == src) or msg_id in self._reply_waiters

    def _on_init(self, src: bytes, p: wire.Init, now: float, actions: list[Action]) -> None:
        key: InKey = (src, p.msg_id, p.reply)
        r = self._in.get(key)
        if r is not None:
            # A resent INIT refreshes the idle timer only if it carries a new chunk.
            if p.data:
                self._accept_chunk(r, 0, p.data, now, actions)
            else:
                actions.append(r.ack())
            self._schedule_in(r)
            return
        if key in self._completed:
            self._send(actions, src, wire.Received(p.msg_id, p.reply))
            return
        exempt = p.reply and self._reply_bypasses_acl(src, p.msg_id)
        reason = self._incoming.check(src, p, self.inbox, self.topics, exempt)
        if reason is not None:
            self.stats[f"refused_{reason.name.lower()}"] += 1
            self._send(actions, src, wire.Abort(p.msg_id, p.reply, reason))
            return
        r = self._incoming.start(src, p, now)
        if r.reasm.count == 0:
            self._complete(r, now, actions)
            return
        if p.data:
            self._accept_chunk(r, 0, p.data, now, actions)
        else:
            actions.append(r.ack())
        if key in self._in:
            self._schedule_in(r)

    def _on_chunk(self, src: bytes, p: wire.Chunk, now: float, actions: list[Action]) -> None:
        key: InKey = (src, p.msg_id, p.reply)
        r = self._in.get(key)
        if r is None:
            if key in self._completed:
                self._send(actions, src, wire.Received(p.msg_id, p.reply))
            else:
                self._send(
                    actions, src, wire.Abort(p.msg_id, p.reply, AbortReason.UNKNOWN_TRANSFER)
                )
            return
        self._accept_chunk(r, p.index, p.data, now, actions)
        if key in self._in:
            self._schedule_in(r)

    def _accept_chunk(
        self,
        r: InboundTransfer,
        index: int,
        data: bytes | memoryview,
        now: float,
        actions: list[Action],
    ) -> None:
        result = r.accept(index, data, now)
        if result is Accepted.IGNORED:
            self.stats["ignored"] += 1
        elif result is Accepted.COMPLETE:
            self._complete(r, now, actions)
        else:
            actions.append(r.ack())

    def _complete(self, r: InboundTransfer, now: float, actions: list[Action]) -> None:
        done = r.complete(self.defer_large_hashes)
        if isinstance(done, VerifyMessage):
            actions.append(done)
            return
        payload, digest_ok = done
        self._deliver(r, payload, digest_ok, now, actions)

    def on_verified(self, key: InKey, payload: bytes, ok: bool, now: float) -> list[Action]:
        """The answer to a :class:`VerifyMessage`: deliver the message, or ABORT integrity."""
        actions: list[Action] = []
        r = self._in.get(key)
        if r is not None and r.verifying:
            self._deliver(r, payload, ok, now, actions)
        return actions

    def _deliver(
        self, r: InboundTransfer, payload: bytes, digest_ok: bool, now: float, actions: list[Action]
    ) -> None:
        src, msg_id, reply = r.key
        self._incoming.drop(r)
        if len(payload) != r.reasm.total or not digest_ok:
            self._send(actions, src, wire.Abort(msg_id, reply, AbortReason.INTEGRITY))
            return
        self._completed[r.key] = False
        while len(self._completed) > self.limits.max_completed_memory:
            self._completed.popitem(last=False)
        if not reply:
            self._reply_routes.pop(msg_id, None)
            self._reply_routes[msg_id] = src
            while len(self._reply_routes) > self.limits.max_reply_routes:
                self._reply_routes.popitem(last=False)
        message = InboundMessage(
            msg_id, src, self.public_key, r.topic, payload, reply, self.wall(now)
        )
        if reply and msg_id in self._reply_waiters:
            actions.append(ReplyArrived(message))
            self._send(actions, src, wire.Received(msg_id, reply))
            self._mark_read(r.key, now, actions)
            return
        path = self._forward_path(message)
        if path is not None:
            # Stored (durable) and hidden until the socket has it: RECEIVED is safe to send.
            seq = self._store_inbox(message, actions)
            actions.append(ForwardMessage(message, path))
            self._hold(seq, message, math.inf)
        else:
            actions.extend(self.deliver_to_inbox(message))
        self._send(actions, src, wire.Received(msg_id, reply))

    def _forward_path(self, message: InboundMessage) -> str | None:
        """The Unix socket this (non-reply) message's topic is forwarded to, if any."""
        cfg = self.topics.config(message.topic)
        return None if cfg is None or message.reply else cfg.forward_socket

    # sender side
    def _on_ack(self, src: bytes, p: wire.Ack, now: float, actions: list[Action]) -> None:
        t = self._out.get((p.msg_id, p.reply))
        if t is None or t.dst != src or t.state not in (OutState.PENDING, OutState.SENDING):
            return
        progressed = t.on_ack(p, now, actions)
        self._schedule_out(t)
        if progressed:
            self._pump_peer(t.dst, now, actions)

    def _on_received(self, src: bytes, p: wire.Received, now: float, actions: list[Action]) -> None:
        t = self._out.get((p.msg_id, p.reply))
        if t is not None and t.dst == src and t.state in (OutState.PENDING, OutState.SENDING):
            self._finish_out(t, OutState.RECEIVED, None, now, actions)

    def _on_read(self, src: bytes, p: wire.Read, now: float, actions: list[Action]) -> None:
        key = (p.msg_id, p.reply)
        t = self._out.get(key)
        if t is not None and t.dst == src and t.state in (OutState.PENDING, OutState.SENDING):
            self._finish_out(t, OutState.RECEIVED, None, now, actions)
        done = self._done.get(key)
        if done is not None and done.dst == src and done.state == OutState.RECEIVED:
            done.state = OutState.READ
            finished = done.finished_wall or self.wall(now)
            self._persist(
                actions, FinishOutbox(done.msg_id, done.reply, OutState.READ, None, finished)
            )
            actions.append(StatusChanged(done.msg_id, done.reply, OutState.READ))
        self._send(actions, src, wire.ReadAck(p.msg_id, p.reply))

    def _on_abort(self, src: bytes, p: wire.Abort, now: float, actions: list[Action]) -> None:
        if p.reason == AbortReason.SENDER_GAVE_UP:
            r = self._in.get((src, p.msg_id, p.reply))
            if r is not None:
                self._incoming.drop(r)
            return
        t = self._out.get((p.msg_id, p.reply))
        if t is None or t.dst != src or t.state not in (OutState.PENDING, OutState.SENDING):
            return
        if p.reason == AbortReason.BUSY:
            if t.on_busy(now):
                self._schedule_out(t)
                self._pump_peer(t.dst, now, actions)
        elif p.reason == AbortReason.UNKNOWN_TRANSFER:
            if t.on_unknown(now, actions):
                self._schedule_out(t)
        else:
            self._finish_out(t, OutState.ABORTED, REASON_TEXT[p.reason], now, actions)

    # ------------------------------------------------------------------ timers
    def on_timer(self, now: float) -> list[Action]:
        """Run every timer that is due at ``now``."""
        actions: list[Action] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, kind, obj = heapq.heappop(heap)
            if not self._timer_valid(when, kind, obj):
                continue
            if isinstance(obj, OutboundTransfer):
                obj.next_event = math.inf
                self._out_timer(obj, now, actions)
                if obj.key in self._out:
                    self._schedule_out(obj)
            elif isinstance(obj, InboundTransfer):
                if now >= obj.expires(self.limits.incoming_idle_timeout):
                    self._incoming.drop(obj)
                else:
                    obj.next_event = math.inf
                    self._schedule_in(obj)
            elif isinstance(obj, _ReadNotice):
                self._send_read(obj, now, actions)
            elif isinstance(obj, _Lease):
                self._end_lease(obj, actions)
                self.stats["leases_expired"] += 1
            elif kind == TimerKind.INBOX:
                self._inbox_timer_at = math.inf
                self._expire_inbox(now, actions)
            else:
                self._gc_done(now, actions)
        return actions

    def _gc_done(self, now: float, actions: list[Action]) -> None:
        while self._done:
            key, t = next(iter(self._done.items()))
            if self._done_expiry(t) > now:
                self._push_timer(TimerKind.GC, None, self._done_expiry(t))
                return
            del self._done[key]
            self._persist(actions, DeleteOutbox(t.msg_id, t.reply))

    def _out_timer(self, t: OutboundTransfer, now: float, actions: list[Action]) -> None:
        if now >= t.deadline:
            if t.init_ever_sent:
                self._send(
                    actions, t.dst, wire.Abort(t.msg_id, t.reply, AbortReason.SENDER_GAVE_UP)
                )
            self._finish_out(t, OutState.ABORTED, self._deadline_reason(t), now, actions)
            return
        t.on_timeout(now, actions)
        if t.stalled and t.dst not in self._stalled:
            self._stalled[t.dst] = False
            while len(self._stalled) > self.limits.max_watched_destinations:
                self._stalled.popitem(last=False)  # still retried, only not watched

    @staticmethod
    def _deadline_reason(t: OutboundTransfer) -> str:
        if t.state == OutState.WAITING:
            return REASON_NO_OWNER.format(address=IPv6Address(t.dst_ip))
        if t.acked_count:
            return REASON_UNFINISHED.format(acked=t.acked_count, count=t.count)
        if t.state == OutState.PENDING:
            return REASON_NO_ANSWER
        return REASON_DEADLINE + ": still queued behind other messages to the same receiver"

    # ------------------------------------------------------------------ persistence
    def _load(self, store: MessageStore, now: float) -> None:
        for seq, message in store.inbox_load():
            self.inbox.push(message, seq)
            if not message.reply:
                self._reply_routes[message.msg_id] = message.src_pk
        self._arm_inbox_ttl()
        wall_now = self.wall(now)
        actions: list[Action] = []
        for rec in store.outbox_load():
            if rec.state in FINAL_STATES or rec.payload is None:
                finished = rec.finished or rec.created
                if finished + self.limits.status_ttl <= wall_now:
                    store.outbox_delete(rec.msg_id, rec.reply)
                    continue
                t = self._new_out(
                    rec.msg_id, rec.reply, rec.dst, rec.topic, b"", rec.created, rec.deadline, now
                )
                self.outbox_bytes -= t.total
                del self._out[t.key]
                t.total = rec.msg_len
                t.count = chunk_count(rec.msg_len, t.chunk_size)
                t.state = OutState(rec.state) if rec.state in FINAL_STATES else OutState.ABORTED
                t.reason = rec.reason
                t.finished_wall = finished
                if t.state != OutState.ABORTED:
                    t.acked_count = t.next_new = t.count
                self._remember_done(t, actions)
                continue
            t = self._new_out(
                rec.msg_id,
                rec.reply,
                rec.dst,
                rec.topic,
                rec.payload,
                rec.created,
                rec.deadline,
                now,
            )
            if rec.deadline <= wall_now:
                t.state = OutState.PENDING
                self._finish_out(t, OutState.ABORTED, REASON_DEADLINE, now, actions)
            elif t.dst_ip:
                self._wait(t)
            else:
                t.state = OutState.QUEUED
                self._queued.setdefault(t.dst, deque()).append(t.key)
        # Writes made while loading happen now, like the reads (at construction, not per input).
        for action in actions:
            if isinstance(action, Persist):
                apply(store, action)

    def start(self, now: float) -> list[Action]:
        """Start transfers restored from the store (call once after construction)."""
        actions: list[Action] = []
        # Messages for forwarded topics that the socket never got (crash, shutdown): again.
        for seq, message in self.inbox.items():
            path = self._forward_path(message)
            if path is not None and message.msg_id not in self._leases:
                self._hold(seq, message, math.inf)
                actions.append(ForwardMessage(message, path))
        for dst in list(self._queued):
            self._activate_queued(dst, now, actions)
        for t in self._out.values():
            self._schedule_out(t)
        return actions
