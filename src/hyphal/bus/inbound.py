"""Incoming transfers: admission, reassembly and completion (sans-IO).

:class:`Incoming` holds the unfinished incoming transfers and decides whether an INIT may start
one (chunk size, topic ACL, message size, inbox room, per-source and total limits), counting what
each source has reserved. :class:`InboundTransfer` reassembles one message chunk by chunk
(``hyphal.bus.chunks``), builds its ACKs, and on completion checks the BLAKE3 digest or, for a
large message the adapter hashes off the loop, asks for it with :class:`VerifyMessage`. The core
(``hyphal.bus.core``) delivers verified messages (inbox, reply waiters, forward sockets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from hyphal.bus.actions import InKey, SendPacket, VerifyMessage
from hyphal.bus.chunks import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, Reassembly, chunk_count
from hyphal.bus.digest import PARALLEL_HASH_MIN, message_digest
from hyphal.bus.inbox import Inbox
from hyphal.bus.limits import Limits
from hyphal.bus.topics import TopicTable
from hyphal.identity import address_for_public_key
from hyphal.wire import bus as wire
from hyphal.wire.bus import AbortReason


class Accepted(Enum):
    """What a chunk did to its transfer."""

    IGNORED = "ignored"  # invalid for this transfer, or it is already being verified
    PARTIAL = "partial"  # stored (or a duplicate); the message is not complete yet
    COMPLETE = "complete"


@dataclass(eq=False)
class InboundTransfer:
    """One message being received."""

    key: InKey
    reasm: Reassembly
    topic: bytes
    digest: bytes
    deadline: float
    last_activity: float
    window: int
    next_event: float = math.inf
    verifying: bool = False  # complete; waiting for VerifyMessage's answer

    def expires(self, idle_timeout: float) -> float:
        """When the transfer is dropped: its deadline, or ``idle_timeout`` without progress."""
        return min(self.deadline, self.last_activity + idle_timeout)

    def accept(self, index: int, data: bytes | memoryview, now: float) -> Accepted:
        if not self.reasm.valid(index, len(data)) or self.verifying:
            return Accepted.IGNORED
        if self.reasm.add(index, data):
            self.last_activity = now  # only real progress keeps a transfer alive
        return Accepted.COMPLETE if self.reasm.complete else Accepted.PARTIAL

    def ack(self) -> SendPacket:
        """The ACK for the current state: cumulative pointer, SACK ranges, receive window."""
        src, msg_id, reply = self.key
        ranges = self.reasm.sack_ranges(self.window, wire.MAX_SACK_RANGES)
        ack = wire.Ack(msg_id, reply, self.reasm.cumulative, self.window, ranges)
        return SendPacket(src, wire.encode(ack))

    def complete(self, defer_large_hashes: bool) -> VerifyMessage | tuple[bytes, bool]:
        """The whole message and whether its digest matches, or (a large message, hashes
        deferred) the :class:`VerifyMessage` to hand the adapter."""
        payload = self.reasm.data()
        if defer_large_hashes and len(payload) >= PARALLEL_HASH_MIN:
            self.verifying = True
            return VerifyMessage(self.key, payload, self.digest)
        return payload, message_digest(payload) == self.digest


#: The reasons :meth:`Incoming.check` refuses a transfer with (each counted as ``refused_*``).
REFUSALS = (
    AbortReason.BAD_REQUEST,
    AbortReason.REJECTED_ACL,
    AbortReason.TOO_LARGE,
    AbortReason.INBOX_FULL,
    AbortReason.BUSY,
)


class Incoming:
    """Unfinished incoming transfers and the admission control that starts them."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.transfers: dict[InKey, InboundTransfer] = {}
        self._per_src: dict[bytes, int] = {}
        self._reserved_per_src: dict[bytes, int] = {}
        self.reserved = 0  # bytes announced by every unfinished transfer

    def check(
        self, src: bytes, p: wire.Init, inbox: Inbox, topics: TopicTable, acl_exempt: bool
    ) -> AbortReason | None:
        """Why ``p`` may not start a transfer now (None: it may). ``acl_exempt``: a reply this
        node expects, accepted whatever the topic ACL says."""
        lim = self.limits
        if not MIN_CHUNK_SIZE <= p.chunk_size <= MAX_CHUNK_SIZE:
            return AbortReason.BAD_REQUEST
        count = chunk_count(p.total, p.chunk_size)
        if p.data and (count == 0 or len(p.data) != min(p.chunk_size, p.total)):
            return AbortReason.BAD_REQUEST
        if not acl_exempt and not topics.allowed(p.topic, address_for_public_key(src)):
            return AbortReason.REJECTED_ACL
        if p.total > lim.max_message_size:
            return AbortReason.TOO_LARGE
        if (
            inbox.bytes + p.total > lim.max_inbox_bytes
            or len(inbox) >= lim.max_inbox_count
            or inbox.from_source(src) >= lim.max_inbox_per_source
        ):
            return AbortReason.INBOX_FULL
        if (
            self._per_src.get(src, 0) >= lim.max_incoming_per_source
            or self._reserved_per_src.get(src, 0) + p.total > lim.max_reserved_per_source
            or len(self.transfers) >= lim.max_incoming_total
            or inbox.bytes + self.reserved + p.total > lim.max_inbox_bytes
            or len(inbox) + len(self.transfers) >= lim.max_inbox_count
        ):
            return AbortReason.BUSY
        return None

    def start(self, src: bytes, p: wire.Init, now: float) -> InboundTransfer:
        """Start the transfer ``p`` announces (after :meth:`check` allowed it)."""
        lim = self.limits
        lifetime = min(float(p.lifetime), lim.max_deadline)
        window = max(1, lim.receive_window // p.chunk_size)
        key: InKey = (src, p.msg_id, p.reply)
        r = InboundTransfer(
            key, Reassembly(p.total, p.chunk_size), p.topic, p.digest, now + lifetime, now, window
        )
        self.transfers[key] = r
        self._per_src[src] = self._per_src.get(src, 0) + 1
        self._reserved_per_src[src] = self._reserved_per_src.get(src, 0) + p.total
        self.reserved += p.total
        return r

    def drop(self, r: InboundTransfer) -> None:
        """Forget a finished, expired or abandoned transfer and release its reservation."""
        if self.transfers.pop(r.key, None) is None:
            return
        src = r.key[0]
        left = self._per_src.get(src, 1) - 1
        if left > 0:
            self._per_src[src] = left
        else:
            self._per_src.pop(src, None)
        reserved = self._reserved_per_src.get(src, 0) - r.reasm.total
        if reserved > 0:
            self._reserved_per_src[src] = reserved
        else:
            self._reserved_per_src.pop(src, None)
        self.reserved -= r.reasm.total
        r.next_event = math.inf
