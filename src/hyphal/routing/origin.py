"""What we originate (babeld's xroute.c role): per prefix a seqno and signed TLV; rate-limited bumps.

A node always originates its own /64 and may originate more prefixes (each delegated to our key
by its owner, see :class:`hyphal.wire.control.Delegation`). A bump (a seqno request reached us)
re-signs that prefix's announcement with seqno + 1. Bumps cost a token from one bucket shared by
all our prefixes (one per ``seqno_bump_min_interval``, at most ``seqno_bump_burst``); a request
that finds it empty is served when the next token arrives (``bump_at``). Each signature covers
``issued``, the wall clock (never decreasing) at signing; every ``announcement_refresh`` (on the
monotonic clock, ``refresh_at``) each announcement is bumped and re-signed so that it never
expires while we live.
"""

from __future__ import annotations

from collections.abc import Callable

from hyphal.crypto.signing import Signer
from hyphal.routing.params import RoutingParams
from hyphal.wire.control import (
    FLAG_SUB_TLVS,
    Delegation,
    Update,
    announcement_message,
    encode_tlv,
)


class Announcement:
    """One prefix we originate: its seqno, signed freshness, delegation and current TLV."""

    __slots__ = ("bump_at", "delegation", "issued", "prefix64", "refresh_at", "seqno", "tlv")

    def __init__(self, prefix64: bytes, delegation: Delegation | None) -> None:
        self.prefix64 = prefix64
        self.delegation = delegation
        self.seqno = 0
        self.issued = 0
        self.tlv = b""
        self.refresh_at = 0.0
        self.bump_at: float | None = None


class Origin:
    def __init__(
        self,
        prefix64: bytes,
        router_id: bytes,
        signer: Signer,
        params: RoutingParams,
        interval_cs: int,
        now: float,
        wall_clock: Callable[[], float],
    ) -> None:
        self.router_id = router_id
        self._signer = signer
        self._params = params
        self._interval_cs = interval_cs
        self._wall_clock = wall_clock
        self._tokens = float(params.seqno_bump_burst)
        self._tokens_at = now
        self.announcements: dict[bytes, Announcement] = {}
        self.own = self.add(prefix64, None, now)

    def add(self, prefix64: bytes, delegation: Delegation | None, now: float) -> Announcement:
        """Originate ``prefix64`` (or replace its delegation), signed at once."""
        announcement = self.announcements.get(prefix64)
        if announcement is None:
            announcement = self.announcements[prefix64] = Announcement(prefix64, delegation)
        else:
            announcement.delegation = delegation
            announcement.seqno = (announcement.seqno + 1) & 0xFFFF
        self._sign(announcement, now)
        return announcement

    def request(self, prefix64: bytes, now: float) -> bool:
        """A request for a newer seqno of ours arrived: True if we bumped now (else scheduled)."""
        announcement = self.announcements[prefix64]
        self._refill(now)
        if self._tokens >= 1.0:
            self._bump(announcement, now)
            return True
        if announcement.bump_at is None:
            announcement.bump_at = now + (1.0 - self._tokens) * self._params.seqno_bump_min_interval
        return False

    def on_timer(self, now: float) -> list[Announcement]:
        """The announcements re-signed by a scheduled bump or the periodic refresh."""
        changed = []
        for announcement in self.announcements.values():
            if now >= announcement.refresh_at:
                announcement.seqno = (announcement.seqno + 1) & 0xFFFF
                self._sign(announcement, now)
                changed.append(announcement)
            elif announcement.bump_at is not None and now >= announcement.bump_at:
                self._bump(announcement, now)
                changed.append(announcement)
        return changed

    def next_deadline(self) -> float:
        deadline = float("inf")
        for a in self.announcements.values():
            deadline = min(
                deadline, a.refresh_at if a.bump_at is None else min(a.bump_at, a.refresh_at)
            )
        return deadline

    def _refill(self, now: float) -> None:
        params = self._params
        self._tokens = min(
            float(params.seqno_bump_burst),
            self._tokens + (now - self._tokens_at) / params.seqno_bump_min_interval,
        )
        self._tokens_at = now

    def _bump(self, announcement: Announcement, now: float) -> None:
        self._refill(now)
        self._tokens = max(0.0, self._tokens - 1.0)
        announcement.seqno = (announcement.seqno + 1) & 0xFFFF
        self._sign(announcement, now)

    def _sign(self, a: Announcement, now: float) -> None:
        a.issued = max(a.issued, min(0xFFFFFFFF, max(0, int(self._wall_clock()))))
        a.refresh_at = now + self._params.announcement_refresh
        a.bump_at = None
        message = announcement_message(a.prefix64, a.seqno, self.router_id, a.issued)
        signature = self._signer.sign(message)
        subs = () if a.delegation is None else (a.delegation.sub_tlv(),)
        a.tlv = encode_tlv(
            Update(
                a.prefix64,
                a.seqno,
                0,
                self._interval_cs,
                FLAG_SUB_TLVS if subs else 0,
                self.router_id,
                signature,
                subs,
                a.issued,
            )
        )
