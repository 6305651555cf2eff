"""Our own originated announcement (babeld's xroute.c role): seqno, signed TLV, rate-limited bumps.

A bump (a seqno request reached the origin) re-signs the announcement with seqno + 1. Bumps cost
a token from a bucket (one per ``seqno_bump_min_interval``, at most ``seqno_bump_burst``); a
request that finds it empty is served when the next token arrives (``bump_at``). Each signature
covers ``issued``, the wall clock (never decreasing) at signing; every ``announcement_refresh``
(on the monotonic clock, ``refresh_at``) the announcement is bumped and re-signed so that it
never expires while we live.
"""

from __future__ import annotations

from collections.abc import Callable

from hyphal.crypto.signing import Signer
from hyphal.routing.params import RoutingParams
from hyphal.wire.control import Update, announcement_message, encode_tlv


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
        self.prefix64 = prefix64
        self.router_id = router_id
        self._signer = signer
        self._params = params
        self._interval_cs = interval_cs
        self._wall_clock = wall_clock
        self.seqno = 0
        self.issued = 0
        self.tlv = self._sign(now)
        self.bump_at: float | None = None
        self._tokens = float(params.seqno_bump_burst)
        self._tokens_at = now

    def request(self, now: float) -> bool:
        """A request for a newer seqno arrived: True if we bumped now (else one is scheduled)."""
        self._refill(now)
        if self._tokens >= 1.0:
            self._bump(now)
            return True
        if self.bump_at is None:
            self.bump_at = now + (1.0 - self._tokens) * self._params.seqno_bump_min_interval
        return False

    def on_timer(self, now: float) -> bool:
        """True if a scheduled bump or the periodic refresh happened."""
        if now >= self.refresh_at:
            self.seqno = (self.seqno + 1) & 0xFFFF
            self.tlv = self._sign(now)
            return True
        if self.bump_at is None or now < self.bump_at:
            return False
        self._bump(now)
        return True

    def next_deadline(self) -> float:
        return self.refresh_at if self.bump_at is None else min(self.bump_at, self.refresh_at)

    def _refill(self, now: float) -> None:
        params = self._params
        self._tokens = min(
            float(params.seqno_bump_burst),
            self._tokens + (now - self._tokens_at) / params.seqno_bump_min_interval,
        )
        self._tokens_at = now

    def _bump(self, now: float) -> None:
        self._refill(now)
        self._tokens = max(0.0, self._tokens - 1.0)
        self.seqno = (self.seqno + 1) & 0xFFFF
        self.tlv = self._sign(now)
        self.bump_at = None

    def _sign(self, now: float) -> bytes:
        self.issued = max(self.issued, min(0xFFFFFFFF, max(0, int(self._wall_clock()))))
        self.refresh_at = now + self._params.announcement_refresh
        message = announcement_message(self.prefix64, self.seqno, self.router_id, self.issued)
        signature = self._signer.sign(message)
        return encode_tlv(
            Update(
                self.prefix64,
                self.seqno,
                0,
                self._interval_cs,
                0,
                self.router_id,
                signature,
                issued=self.issued,
            )
        )
