"""Checks on signed origin announcements, with a bounded cache of verification results.

An announcement binds (prefix, seqno, router id, issued) with an XEdDSA signature by the key in
the router id. It is accepted only if the prefix lies in 400::/7, is the /64 that key owns, the
key is not a low-order point, ``issued`` lies within the freshness window around our wall clock
(no older than lifetime + skew, no further ahead than skew), and the signature verifies. Results
are cached per (router id, seqno, issued, signature): relays repeat the origin's signature
unchanged, so each announcement is verified once per router (or once per process, when the
simulator injects a shared memoising verifier).

A prefix other than the key's own /64 needs a :class:`Delegation`: signed by the key owning that
/64 (usable, binding the prefix) over (prefix, announcing key, expiry), not expired.
"""

from __future__ import annotations

from hyphal.crypto.signing import Verifier
from hyphal.identity import is_usable_public_key, prefix64_for_public_key
from hyphal.wire.control import Delegation, announcement_message, delegation_message

OK = "ok"
BAD_PREFIX = "prefix"
WRONG_KEY = "key"
BAD_SIGNATURE = "signature"
EXPIRED = "expired"
FUTURE = "future"
BAD_DELEGATION = "delegation"


def in_overlay(prefix64: bytes) -> bool:
    """True if the prefix lies inside 400::/7."""
    return len(prefix64) == 8 and prefix64[0] in (0x04, 0x05)


class AnnouncementChecker:
    def __init__(self, verifier: Verifier, cache_size: int, lifetime: float, skew: float) -> None:
        self._verifier = verifier
        self._cache: dict[tuple[bytes, int, int, bytes], bool] = {}
        self._cache_size = cache_size
        self._lifetime = lifetime
        self._skew = skew
        self.verifications = 0

    def expires_in(self, issued: int, wall: float) -> float:
        """Seconds (on any clock) until an announcement issued at ``issued`` stops being fresh."""
        return issued + self._lifetime + self._skew - wall

    def check(
        self,
        prefix64: bytes,
        seqno: int,
        router_id: bytes,
        issued: int,
        signature: bytes,
        wall: float,
        delegation: Delegation | None = None,
    ) -> str:
        """OK or why (BAD_PREFIX, WRONG_KEY, BAD_DELEGATION, EXPIRED, FUTURE, BAD_SIGNATURE)."""
        if not in_overlay(prefix64):
            return BAD_PREFIX
        key_bytes = router_id[:32]
        if not is_usable_public_key(key_bytes):
            return WRONG_KEY
        if prefix64_for_public_key(key_bytes) != prefix64:
            if delegation is None:
                return WRONG_KEY
            if not self.delegation_holds(prefix64, key_bytes, delegation, wall):
                return BAD_DELEGATION
        if self.expires_in(issued, wall) <= 0:
            return EXPIRED
        if issued > wall + self._skew:
            return FUTURE
        key = (router_id, seqno, issued, signature)
        good = self._cache.get(key)
        if good is None:
            self.verifications += 1
            good = self._verifier.verify(
                router_id[:32], announcement_message(prefix64, seqno, router_id, issued), signature
            )
            if len(self._cache) >= self._cache_size:
                del self._cache[next(iter(self._cache))]
            self._cache[key] = good
        return OK if good else BAD_SIGNATURE

    def delegation_expires_in(self, delegation: Delegation, wall: float) -> float:
        """Seconds until ``delegation`` stops authorising anything."""
        return delegation.expiry + self._skew - wall

    def delegation_holds(
        self, prefix64: bytes, delegate: bytes, delegation: Delegation, wall: float
    ) -> bool:
        """True if ``delegation`` lets ``delegate`` announce ``prefix64`` at ``wall``."""
        owner = delegation.owner
        if (
            self.delegation_expires_in(delegation, wall) <= 0
            or prefix64_for_public_key(owner) != prefix64
            or not is_usable_public_key(owner)
        ):
            return False
        key = (owner + delegate, delegation.expiry, 0, delegation.signature)
        good = self._cache.get(key)
        if good is None:
            self.verifications += 1
            message = delegation_message(prefix64, delegate, delegation.expiry)
            good = self._verifier.verify(owner, message, delegation.signature)
            if len(self._cache) >= self._cache_size:
                del self._cache[next(iter(self._cache))]
            self._cache[key] = good
        return good
