"""Every membership tunable in one place, with its reason (see docs/membership.md, "Timers")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MembershipParams:
    record_ttl_s: int = 7200
    """A record's lifetime: ``expires = now + record_ttl_s``. Liveness comes from routing, so this
    only bounds how long a vanished member's record lingers; it sets the idle cost (below)."""
    refresh_fraction: float = 1 / 3
    """Republish when this fraction of the lifetime has passed (+-10 % jitter): two refreshes can
    be lost before the record expires. Idle cost per node is about
    ``members * record size / (record_ttl_s * refresh_fraction)``."""
    tombstone_ttl_s: int = 7200
    """How long a graceful leave is remembered; it outlives every record it supersedes."""
    max_clock_skew_s: int = 300
    """Accepted difference between our wall clock and an origin's, for ``expires``."""
    summary_interval_s: float = 10.0
    """Anti-entropy: each neighbour gets our (count, root hash) this often (+-25 % jitter)."""
    settle_s: float = 10.0
    """Summaries leave out the changes of the last this many seconds (in flight: the push is
    delivering them); it must exceed the time a change takes to reach every node."""
    bucket_reply_interval_s: float = 5.0
    """At most one bucket comparison answered per neighbour in this time."""
    announce_delay_s: float = 0.02
    """New items are batched this long per neighbour before the HAVE goes out."""
    want_timeout_s: float = 1.0
    """A WANT not answered in this time goes to another neighbour that announced the item."""
    send_rate_bps: int = 128_000
    """Bytes per second we send one neighbour (token bucket); what does not fit waits."""
    send_burst: int = 256_000
    recv_rate_bps: int = 256_000
    """Bytes per second we accept from one neighbour; frames beyond it are dropped, counted."""
    recv_burst: int = 512_000
    max_frame: int = 16_000
    """Largest gossip frame body we build; a received one may be at most 4x this."""
    max_queue: int = 8192
    """Items waiting for one neighbour's send budget; beyond it the oldest are dropped."""
    max_members: int = 20_000
    """Records kept; a new origin beyond it is refused (counted) until one expires."""
    max_revocations: int = 65_536
    origin_rate_per_s: float = 1 / 6
    """New versions accepted per origin per second (after a burst of ``origin_burst``)."""
    origin_burst: int = 10
    max_pending_wants: int = 32_768


DEFAULT_PARAMS = MembershipParams()
