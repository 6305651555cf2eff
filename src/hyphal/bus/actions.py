"""What the message core hands its adapter: actions, outbound states and status records.

The core (``hyphal.bus.core``) and its transfer objects (``hyphal.bus.outbound``,
``hyphal.bus.inbound``) build these; ``hyphal.bus.service`` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hyphal.bus.inbox import InboundMessage
from hyphal.bus.persist import DeleteInbox, DeleteOutbox, FinishOutbox, StoreInbox, StoreOutbox
from hyphal.wire.bus import AbortReason

OutKey = tuple[bytes, bool]  # (message id, is reply)
InKey = tuple[bytes, bytes, bool]  # (source public key, message id, is reply)


class OutState(StrEnum):
    """Outbound states (Mycelium names; ``waiting`` and ``queued`` are reported as ``pending``).

    ``waiting``: the destination is an overlay address whose owner (its public key) is not known
    yet, so nothing can be sealed; the message waits until a route to that /64 appears or its
    deadline passes. ``queued``: behind other transfers to the same destination.
    """

    WAITING = "waiting"
    QUEUED = "queued"
    PENDING = "pending"
    SENDING = "sending"
    RECEIVED = "received"
    READ = "read"
    ABORTED = "aborted"


FINAL_STATES = frozenset({OutState.RECEIVED, OutState.READ, OutState.ABORTED})

REASON_TEXT = {
    AbortReason.SENDER_GAVE_UP: "sender gave up",
    AbortReason.REJECTED_ACL: "rejected by the receiver's topic ACL",
    AbortReason.TOO_LARGE: "message larger than the receiver accepts",
    AbortReason.INBOX_FULL: "receiver inbox full",
    AbortReason.BUSY: "receiver busy",
    AbortReason.UNKNOWN_TRANSFER: "receiver lost the transfer",
    AbortReason.INTEGRITY: "integrity check failed at the receiver",
    AbortReason.BAD_REQUEST: "receiver rejected the transfer parameters",
}
REASON_DEADLINE = "deadline passed"
#: Why a message failed at its deadline, by how far it got (each starts with REASON_DEADLINE).
REASON_NO_OWNER = REASON_DEADLINE + ": no node owning {address} became reachable"
REASON_NO_ANSWER = REASON_DEADLINE + ": the receiver never answered (offline or unreachable)"
REASON_UNFINISHED = (
    REASON_DEADLINE + " during the transfer ({acked} of {count} chunks acknowledged)"
)
#: Shown while a message waits for its destination's owner (state ``pending``).
REASON_WAITING = "no node owning {address} is reachable yet; retrying until the deadline"


@dataclass(frozen=True, slots=True)
class SendPacket:
    """Hand ``body`` (one bus packet) to the data path for the node with public key ``dst``."""

    dst: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class MessageArrived:
    """The inbox has a message on ``topic`` readers may take (wake long polls)."""

    topic: bytes


@dataclass(frozen=True, slots=True)
class ReplyArrived:
    """A reply for an id registered with :meth:`MessageCore.expect_reply`."""

    message: InboundMessage


@dataclass(frozen=True, slots=True)
class ForwardMessage:
    """Write ``message`` to the Unix socket ``socket_path``; it is held (leased, stored) in the
    inbox until :meth:`MessageCore.ack` (the socket has it) or :meth:`MessageCore.release`."""

    message: InboundMessage
    socket_path: str


@dataclass(frozen=True, slots=True)
class VerifyMessage:
    """Check ``message_digest(payload) == digest`` off the event loop, then call
    :meth:`MessageCore.on_verified` (only with ``defer_large_hashes``, for large messages)."""

    key: InKey
    payload: bytes
    digest: bytes


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """An outbound message (``reply``: a reply) entered ``state``."""

    msg_id: bytes
    reply: bool
    state: OutState


Action = (
    SendPacket
    | MessageArrived
    | ReplyArrived
    | ForwardMessage
    | VerifyMessage
    | StatusChanged
    | StoreInbox
    | DeleteInbox
    | StoreOutbox
    | FinishOutbox
    | DeleteOutbox
)


@dataclass(frozen=True, slots=True)
class MessageStatus:
    msg_id: bytes
    reply: bool
    dst_pk: bytes | None  # None while (or if, at the end) the destination's owner is unknown
    dst_ip: bytes  # 16 bytes: the address the message was sent to, or the key's address
    state: OutState  # pending | sending | received | read | aborted (waiting, queued: pending)
    pending: int  # chunks never sent
    sent: int  # chunks sent, not yet acknowledged
    acked: int
    created: float  # wall clock
    deadline: float  # wall clock
    msg_len: int
    reason: str | None
