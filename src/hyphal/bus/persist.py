"""Persistence actions: the store writes the message core asks for, as values.

With ``MessageCore(..., defer_writes=True)`` the core never touches SQLite after loading; it
appends these to its action list instead, in the order the writes must happen. Actions that follow
a write in the same list must not run before that write is durable (RECEIVED follows
:class:`StoreInbox`, the first INIT follows :class:`StoreOutbox`). :func:`apply` performs one of
them on a :class:`~hyphal.bus.store.MessageStore`; ``MessageService`` runs it in one writer
thread, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from hyphal.bus.inbox import InboundMessage
from hyphal.bus.store import MessageStore, OutboxRecord


@dataclass(frozen=True, slots=True)
class StoreInbox:
    """Write an inbox message under its local sequence number."""

    seq: int
    message: InboundMessage


@dataclass(frozen=True, slots=True)
class DeleteInbox:
    """Delete an inbox message (popped, acked or expired)."""

    seq: int


@dataclass(frozen=True, slots=True)
class StoreOutbox:
    """Write a submitted outbound message with its payload."""

    record: OutboxRecord


@dataclass(frozen=True, slots=True)
class FinishOutbox:
    """An outbound message is final: keep its status, drop its payload."""

    msg_id: bytes
    reply: bool
    state: str
    reason: str | None
    finished: float  # wall clock


@dataclass(frozen=True, slots=True)
class DeleteOutbox:
    """Forget an outbound message's status record."""

    msg_id: bytes
    reply: bool


Persist = StoreInbox | DeleteInbox | StoreOutbox | FinishOutbox | DeleteOutbox


def apply(store: MessageStore, op: Persist) -> None:
    """Perform one write (synchronously, in the calling thread)."""
    if isinstance(op, StoreInbox):
        store.inbox_put(op.seq, op.message)
    elif isinstance(op, DeleteInbox):
        store.inbox_delete(op.seq)
    elif isinstance(op, StoreOutbox):
        store.outbox_put(op.record)
    elif isinstance(op, FinishOutbox):
        store.outbox_finish(op.msg_id, op.reply, op.state, op.reason, op.finished)
    else:
        store.outbox_delete(op.msg_id, op.reply)
