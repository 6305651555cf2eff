"""Seqno-request state (babeld's resend.c role): what we sent, what we saw, what we retry.

Every operation is O(1) amortised: the two caches are insertion-ordered and, the clock being
monotonic, also ordered by time, so expired entries leave from the front and a full cache drops
its oldest entry. Forwarding someone else's request costs a token from that neighbour's bucket,
so one neighbour cannot make us (and every hop toward the origin) forward without bound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from hyphal.routing.bucket import TokenBucket
from hyphal.routing.params import RoutingParams

K = TypeVar("K", bound=Hashable)


class ExpiringSet(Generic[K]):
    """Keys remembered for ``lifetime`` seconds, at most ``size`` of them (oldest go first)."""

    def __init__(self, lifetime: float, size: int) -> None:
        self._lifetime = lifetime
        self._size = size
        self._at: OrderedDict[K, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._at)

    def recent(self, key: K, now: float) -> bool:
        at = self._at.get(key)
        return at is not None and now - at < self._lifetime

    def add(self, key: K, now: float) -> None:
        at = self._at
        at.pop(key, None)
        at[key] = now
        lifetime = self._lifetime
        while at:
            oldest = next(iter(at.values()))
            if now - oldest < lifetime and len(at) <= self._size:
                break
            at.popitem(last=False)


class SeqnoRequests:
    """Duplicate suppression, per-neighbour forwarding budget and retries for seqno requests."""

    def __init__(self, params: RoutingParams) -> None:
        self._params = params
        size = params.request_cache_size
        self._sent: ExpiringSet[tuple[int, bytes, bytes, int]] = ExpiringSet(
            params.seqno_request_resend, size
        )
        # Requests forwarded, with the neighbour they went to: a copy is a duplicate only if it
        # would go the same way. When our route moved since (the first copy went into a node
        # that was about to die, or that is starved itself), it is forwarded along the new one
        # at once, instead of waiting for the asker's retry a second later.
        self._seen: ExpiringSet[tuple[bytes, bytes, int, int]] = ExpiringSet(
            params.seqno_request_dedupe, size
        )
        self._buckets: dict[int, TokenBucket] = {}
        self._retries: dict[bytes, int] = {}  # starved prefix -> re-sends left
        # Requests we forwarded, by the neighbour we forwarded them to: (prefix, router id,
        # seqno) -> (hop count we sent, the neighbour that asked, when). If that neighbour dies
        # before the answer arrives (typically: it was forwarding into the node whose death
        # starved the asker, and had not noticed yet), the request is forwarded again at once
        # instead of waiting for the asker's retry a second later.
        self._forwarded: dict[int, OrderedDict[tuple[bytes, bytes, int], tuple[int, int, float]]]
        self._forwarded = {}
        self._forwarded_count = 0

    def sizes(self) -> tuple[int, int, int]:
        """Entries held: (sent cache, seen cache, retrying prefixes)."""
        return len(self._sent), len(self._seen), len(self._retries)

    def should_send(
        self, peer: int, prefix: bytes, router_id: bytes, seqno: int, now: float
    ) -> bool:
        """True (and remembered) unless the same request went to ``peer`` within the resend time."""
        key = (peer, prefix, router_id, seqno)
        if self._sent.recent(key, now):
            return False
        self._sent.add(key, now)
        return True

    def first_sighting(
        self, prefix: bytes, router_id: bytes, seqno: int, target: int, now: float
    ) -> bool:
        """False for a request already forwarded to ``target`` within the dedupe time."""
        return not self._seen.recent((prefix, router_id, seqno, target), now)

    def may_forward(
        self, peer: int, prefix: bytes, router_id: bytes, seqno: int, target: int, now: float
    ) -> bool:
        """Spend one of ``peer``'s forwarding tokens; on success the request counts as seen
        (forwarded to ``target``)."""
        bucket = self._buckets.get(peer)
        if bucket is None:
            params = self._params
            bucket = TokenBucket(params.seqno_forward_rate, params.seqno_forward_burst, now)
            self._buckets[peer] = bucket
        if not bucket.take(now):
            return False
        self._seen.add((prefix, router_id, seqno, target), now)
        return True

    def forwarded(
        self,
        target: int,
        prefix: bytes,
        router_id: bytes,
        seqno: int,
        hop_count: int,
        asker: int,
        now: float,
    ) -> None:
        """Remember that we forwarded a request from ``asker`` to ``target``."""
        sent = self._forwarded.get(target)
        if sent is None:
            sent = self._forwarded[target] = OrderedDict()
        key = (prefix, router_id, seqno)
        if sent.pop(key, None) is not None:
            self._forwarded_count -= 1
        sent[key] = (hop_count, asker, now)
        self._forwarded_count += 1
        lifetime = self._params.seqno_request_resend
        while sent:
            oldest = next(iter(sent.values()))
            if (
                now - oldest[2] < lifetime
                and self._forwarded_count <= self._params.request_cache_size
            ):
                break
            sent.popitem(last=False)
            self._forwarded_count -= 1

    def take_forwarded(self, peer: int, now: float) -> list[tuple[bytes, bytes, int, int, int]]:
        """Requests forwarded to ``peer`` within the resend time and not yet known answered:
        (prefix, router id, seqno, hop count, asker). Forgets them."""
        sent = self._forwarded.pop(peer, None)
        if sent is None:
            return []
        self._forwarded_count -= len(sent)
        lifetime = self._params.seqno_request_resend
        return [
            (prefix, rid, seqno, hops, asker)
            for (prefix, rid, seqno), (hops, asker, at) in sent.items()
            if now - at < lifetime
        ]

    def forget_peer(self, peer: int) -> None:
        self._buckets.pop(peer, None)
        sent = self._forwarded.pop(peer, None)
        if sent is not None:
            self._forwarded_count -= len(sent)

    def arm_retries(self, prefix: bytes) -> bool:
        """A prefix just starved: True if re-sends are configured (the caller arms the timer)."""
        if self._params.seqno_request_retries <= 0:
            return False
        self._retries[prefix] = self._params.seqno_request_retries
        return True

    def take_retry(self, prefix: bytes) -> tuple[bool, bool]:
        """(re-send now, arm the timer again) when the retry timer for ``prefix`` fires."""
        left = self._retries.pop(prefix, 0)
        if left <= 0:
            return False, False
        if left > 1:
            self._retries[prefix] = left - 1
        return True, left > 1
