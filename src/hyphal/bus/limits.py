"""The bounds on memory and work the message core enforces, in one frozen record."""

from __future__ import annotations

from dataclasses import dataclass

from hyphal.bus.chunks import CHUNK_SIZE


@dataclass(frozen=True, slots=True)
class Limits:
    """Every bound on memory and work the core enforces (defaults in parentheses in docs)."""

    max_message_size: int = 128 * 1024 * 1024
    max_inbox_bytes: int = 512 * 1024 * 1024
    max_inbox_count: int = 10_000
    max_outbox_bytes: int = 1024 * 1024 * 1024
    max_outbox_count: int = 10_000
    max_inflight_per_peer: int = 4 * 1024 * 1024
    receive_window: int = 2 * 1024 * 1024
    max_incoming_per_source: int = 16
    #: Bytes one source may have announced in unfinished incoming transfers, so that a few INITs
    #: claiming huge messages cannot reserve the whole inbox and lock every other sender out.
    max_reserved_per_source: int = 128 * 1024 * 1024
    #: Inbox entries from one source (so one sender cannot fill the inbox for everyone).
    max_inbox_per_source: int = 2_500
    #: Seconds an unread message stays in the inbox; then it is dropped and counted.
    inbox_ttl: float = 7 * 86400.0
    #: Seconds a message taken with :meth:`MessageCore.take` stays hidden before it returns.
    lease_time: float = 60.0
    max_incoming_total: int = 256
    max_active_per_destination: int = 8
    incoming_idle_timeout: float = 120.0
    status_ttl: float = 3600.0
    max_status_records: int = 100_000
    max_completed_memory: int = 16_384
    max_read_notices: int = 4096
    max_reply_routes: int = 65_536
    chunk_size: int = CHUNK_SIZE
    #: Overlay /64s with messages waiting for their owner's key (an address destination that no
    #: known node owns yet), and messages waiting per /64: a caller cannot make the node hold an
    #: unbounded set of unreachable destinations.
    max_waiting_destinations: int = 256
    max_waiting_per_destination: int = 64
    #: Destinations whose first INIT went unanswered, watched for a route appearing (then the INIT
    #: is resent at once instead of at the backed-off retransmission time).
    max_watched_destinations: int = 256
    default_deadline: float = 300.0
    max_deadline: float = 30 * 86400.0
