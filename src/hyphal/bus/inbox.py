"""The bounded inbox of received messages, in arrival order, with topic-prefix filtering."""

from __future__ import annotations

from collections import OrderedDict
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
    """FIFO of messages keyed by a local sequence number; tracks total bytes and count."""

    def __init__(self) -> None:
        self._items: OrderedDict[int, InboundMessage] = OrderedDict()
        self._next_seq = 0
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def push(self, message: InboundMessage, seq: int | None = None) -> int:
        if seq is None:
            seq = self._next_seq
        self._next_seq = max(self._next_seq, seq + 1)
        self._items[seq] = message
        self.bytes += len(message.payload)
        return seq

    def find(self, topic: bytes | None) -> tuple[int, InboundMessage] | None:
        """Oldest message whose topic starts with ``topic`` (any message when None)."""
        for seq, message in self._items.items():
            if topic is None or message.topic.startswith(topic):
                return seq, message
        return None

    def remove(self, seq: int) -> InboundMessage | None:
        message = self._items.pop(seq, None)
        if message is not None:
            self.bytes -= len(message.payload)
        return message
