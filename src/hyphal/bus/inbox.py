"""The bounded inbox of received messages, in arrival order, with topic-prefix filtering.

It counts bytes and entries in total and per source (for per-source quotas), and can hide a
message from readers while it is leased to one of them (``lease`` / ``unlease``) without deleting
it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Container
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A fully received and verified message."""

    msg_id: bytes
    src_pk: bytes
    dst_pk: bytes
    topic: bytes
    payload: bytes
    reply: bool
    received_at: float  # wall-clock seconds


class Inbox:
    """FIFO of messages keyed by a local sequence number; tracks bytes and counts."""

    def __init__(self) -> None:
        self._items: OrderedDict[int, InboundMessage] = OrderedDict()
        self._leased: set[int] = set()
        self._per_source: dict[bytes, int] = {}
        self._next_seq = 0
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def from_source(self, src: bytes) -> int:
        """How many messages from ``src`` the inbox holds (leased ones included)."""
        return self._per_source.get(src, 0)

    def push(self, message: InboundMessage, seq: int | None = None) -> int:
        if seq is None:
            seq = self._next_seq
        self._next_seq = max(self._next_seq, seq + 1)
        self._items[seq] = message
        self.bytes += len(message.payload)
        self._per_source[message.src_pk] = self._per_source.get(message.src_pk, 0) + 1
        return seq

    def oldest(self) -> tuple[int, InboundMessage] | None:
        """The message that arrived first (leased or not)."""
        for item in self._items.items():
            return item
        return None

    def items(self) -> list[tuple[int, InboundMessage]]:
        """Every message with its sequence number, oldest first."""
        return list(self._items.items())

    def get(self, seq: int) -> InboundMessage | None:
        return self._items.get(seq)

    def find(
        self, topic: bytes | None, exclude_ids: Container[bytes] = ()
    ) -> tuple[int, InboundMessage] | None:
        """Oldest unleased message whose topic starts with ``topic`` (any message when None).

        Messages whose id is in ``exclude_ids`` are skipped too.
        """
        for seq, message in self._items.items():
            if seq in self._leased or message.msg_id in exclude_ids:
                continue
            if topic is None or message.topic.startswith(topic):
                return seq, message
        return None

    def lease(self, seq: int) -> None:
        """Hide a message from :meth:`find` (it stays in the inbox and its counts)."""
        if seq in self._items:
            self._leased.add(seq)

    def unlease(self, seq: int) -> None:
        self._leased.discard(seq)

    def remove(self, seq: int) -> InboundMessage | None:
        message = self._items.pop(seq, None)
        self._leased.discard(seq)
        if message is not None:
            self.bytes -= len(message.payload)
            left = self._per_source.get(message.src_pk, 1) - 1
            if left > 0:
                self._per_source[message.src_pk] = left
            else:
                self._per_source.pop(message.src_pk, None)
        return message
