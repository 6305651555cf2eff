"""Checks on signed origin announcements, with a bounded cache of verification results.

An announcement binds (prefix, seqno, router id, issued) with an XEdDSA signature by the key in
the router id. It is accepted only if the prefix lies in 400::/7, is the /64 that key owns, the
key is not a low-order point, ``issued`` lies within the freshness window around our wall clock
(no older than lifetime + skew, no further ahead than skew), and the signature verifies. Results
are cached per (router id, seqno, issued, signature): relays repeat the origin's signature
unchanged, so each announcement is verified once per router (or once per process, when the
simulator injects a shared memoising verifier).
"""

from __future__ import annotations

from hyphal.crypto.signing import Verifier
from hyphal.identity import is_usable_public_key, prefix64_for_public_key
from hyphal.wire.control import announcement_message

OK = "ok"
BAD_PREFIX = "prefix"
WRONG_KEY = "key"
BAD_SIGNATURE = "signature"
EXPIRED = "expired"
FUTURE = "future"


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
    ) -> str:
        """OK or why (BAD_PREFIX, WRONG_KEY, EXPIRED, FUTURE, BAD_SIGNATURE) it is refused."""
        if not in_overlay(prefix64):
            return BAD_PREFIX
        key_bytes = router_id[:32]
        if prefix64_for_public_key(key_bytes) != prefix64 or not is_usable_public_key(key_bytes):
            return WRONG_KEY
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
