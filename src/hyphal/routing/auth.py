"""Checks on signed origin announcements, with a bounded cache of verification results.

An announcement binds (prefix, seqno, router id, issued) with an XEdDSA signature by the key in
the router id. It is accepted only if the prefix lies in 400::/7, is the /64 that key owns, the
key is not a low-order point, ``issued`` lies within the freshness window around our wall clock
(no older than lifetime + skew, no further ahead than skew), and the signature verifies. Results
are remembered per announcement, (router id, seqno, issued, signature, prefix): relays repeat
the origin's signature unchanged, so each announcement is verified once per router (or once per
process, when the simulator injects a shared memoising verifier). An announcement a route
carries is vouched for by that route (the router says so with ``verified``) and leaves this
cache (:meth:`AnnouncementChecker.carried`): the cache holds only what no route holds, failures
included, and a table does not pay for every version of every announcement it ever saw.

A prefix other than the key's own /64 needs a :class:`Delegation`: signed by the key owning that
/64 (usable, binding the prefix) over (prefix, announcing key, expiry), not expired.
"""

from __future__ import annotations

from hyphal.crypto.signing import Verifier
from hyphal.identity import is_usable_public_key, prefix64_for_public_key
from hyphal.routing.table import Announcement
from hyphal.wire.control import Delegation, announcement_message, delegation_message

OK = "ok"
BAD_PREFIX = "prefix"
WRONG_KEY = "key"
BAD_SIGNATURE = "signature"
EXPIRED = "expired"
FUTURE = "future"
BAD_DELEGATION = "delegation"
_MISSING: Announcement = (b"", 0, 0, b"", b"")  # a cache miss (no real announcement is empty)


def in_overlay(prefix64: bytes) -> bool:
    """True if the prefix lies inside 400::/7."""
    return len(prefix64) == 8 and prefix64[0] in (0x04, 0x05)


class AnnouncementPool:
    """Verified announcements shared by routers in one process (the simulator's thousands), so
    each is held once, not once per router: what the routers' tables hold stays the same, the
    process holds far less. A daemon's one router has no use for it. Bounded: past ``limit``
    announcements it starts afresh, and the ones routes hold live on in them."""

    def __init__(self, limit: int = 1 << 20) -> None:
        self._held: dict[Announcement, Announcement] = {}
        self._limit = limit

    def shared(self, announcement: Announcement) -> Announcement:
        """The pool's equal announcement, or ``announcement`` itself, now pooled."""
        held = self._held
        pooled = held.get(announcement)
        if pooled is not None:
            return pooled
        if len(held) >= self._limit:
            held.clear()
        held[announcement] = announcement
        return announcement


class AnnouncementChecker:
    def __init__(
        self,
        verifier: Verifier,
        cache_size: int,
        lifetime: float,
        skew: float,
        pool: AnnouncementPool | None = None,
    ) -> None:
        self._verifier = verifier
        self._pool = pool
        # announcement -> itself if its signature verified, None if not; none a route carries
        self._cache: dict[Announcement, Announcement | None] = {}
        # (owner + delegate, expiry, signature) -> the same if it verified, None if not
        self._delegations: dict[tuple[bytes, int, bytes], tuple[bytes, int, bytes] | None] = {}
        self._cache_size = cache_size
        self._lifetime = lifetime
        self._skew = skew
        self.verifications = 0

    def expires_in(self, issued: int, wall: float) -> float:
        """Seconds (on any clock) until an announcement issued at ``issued`` stops being fresh."""
        return issued + self._lifetime + self._skew - wall

    def check(
        self,
        announcement: Announcement,
        wall: float,
        delegation: Delegation | None = None,
        verified: bool = False,
    ) -> tuple[str, Announcement]:
        """OK or why (BAD_PREFIX, WRONG_KEY, BAD_DELEGATION, EXPIRED, FUTURE, BAD_SIGNATURE),
        and the announcement as the cache holds it: routes keep that one tuple, so an
        announcement relayed by several neighbours is stored once.

        ``verified`` says a route carries this very tuple, so it passed every check but
        freshness when that route took it. A cached or verified announcement passed the key
        checks (the prefix is part of it), so a hit costs dictionary lookups only; a delegation
        is checked on every hit, since the same announcement may arrive without it."""
        router_id, seqno, issued, signature, prefix64 = announcement
        if not in_overlay(prefix64):
            return BAD_PREFIX, announcement
        cache = self._cache
        cached = announcement if verified else cache.get(announcement, _MISSING)
        key_bytes = router_id[:32]
        if cached is _MISSING or delegation is not None:
            if not is_usable_public_key(key_bytes):
                return WRONG_KEY, announcement
            if prefix64_for_public_key(key_bytes) != prefix64:
                if delegation is None:
                    return WRONG_KEY, announcement
                if not self.delegation_holds(prefix64, key_bytes, delegation, wall):
                    return BAD_DELEGATION, announcement
        if self.expires_in(issued, wall) <= 0:
            return EXPIRED, announcement
        if issued > wall + self._skew:
            return FUTURE, announcement
        if cached is None:
            return BAD_SIGNATURE, announcement
        if cached is not _MISSING:
            return OK, cached
        self.verifications += 1
        good = self._verifier.verify(
            key_bytes, announcement_message(prefix64, seqno, router_id, issued), signature
        )
        if good and self._pool is not None:
            announcement = self._pool.shared(announcement)
        if len(cache) >= self._cache_size:
            del cache[next(iter(cache))]
        cache[announcement] = announcement if good else None
        return (OK, announcement) if good else (BAD_SIGNATURE, announcement)

    def carried(self, announcement: Announcement) -> None:
        """A route now carries ``announcement`` (a verified one): it vouches for it from now on,
        so the cache lets it go."""
        self._cache.pop(announcement, None)

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
        key = (owner + delegate, delegation.expiry, delegation.signature)
        cache = self._delegations
        if key in cache:
            return cache[key] is not None
        self.verifications += 1
        message = delegation_message(prefix64, delegate, delegation.expiry)
        good = self._verifier.verify(owner, message, delegation.signature)
        if len(cache) >= self._cache_size:
            del cache[next(iter(cache))]
        cache[key] = key if good else None
        return good
