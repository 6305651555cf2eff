"""Our own originated announcement (babeld's xroute.c role): seqno, signed TLV, rate-limited bumps.

A bump (a seqno request reached the origin) re-signs the announcement with seqno + 1. Bumps cost
a token from a bucket (one per ``seqno_bump_min_interval``, at most ``seqno_bump_burst``); a
request that finds it empty is served when the next token arrives (``bump_at``).
"""

from __future__ import annotations

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
    ) -> None:
        self.prefix64 = prefix64
        self.router_id = router_id
        self._signer = signer
        self._params = params
        self._interval_cs = interval_cs
        self.seqno = 0
        self.tlv = self._sign()
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
        """True if the scheduled bump happened."""
        if self.bump_at is None or now < self.bump_at:
            return False
        self._bump(now)
        return True

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
        self.tlv = self._sign()
        self.bump_at = None

    def _sign(self) -> bytes:
        signature = self._signer.sign(
            announcement_message(self.prefix64, self.seqno, self.router_id)
        )
        return encode_tlv(
            Update(self.prefix64, self.seqno, 0, self._interval_cs, 0, self.router_id, signature)
        )
