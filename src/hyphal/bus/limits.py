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
    default_deadline: float = 300.0
    max_deadline: float = 30 * 86400.0
