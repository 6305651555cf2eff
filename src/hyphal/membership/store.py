"""What one node believes about the mesh's members, and every check an item passes to get in.

Items are keyed by ``(kind, id)``: ``id`` is the 8-byte /64 prefix of the member the item is
about, ``kind`` is :data:`KIND_RECORD`, :data:`KIND_ADMISSION` or :data:`KIND_REVOCATION`. Each
item has a version (the record's HLC version, the redemption time, the revocation time). Per
origin there is at most one item of each kind: that is the per-origin cap. The CRDT is a
last-writer-wins register per origin ordered by version, where only the origin can write
(signatures); a tombstone is a version like any other; a revocation is a terminal state.

A record is refused (and counted, by reason) if it is malformed, expired, expires too far in the
future, older than what we hold (rollback), a different record with the same version
(equivocation), wrongly signed, from a revoked or (in a private network) never-admitted key,
beyond the per-origin update rate, or a new origin beyond ``max_members``. Only items that passed
every check are stored, so a relay only ever announces and forwards what it verified.

Memory: a record is kept as its encoded bytes (at most 1 KiB, typically 200-300) in one
:class:`Item` that also carries its hash and the origin's update-rate tokens; the decoded form is
made on demand (a small process-wide cache), the name index keeps one small tuple per name, and
expiry is a sweep at the earliest ``expires``. That keeps a member at about 1 kB per node.

Anti-entropy support: every item has an 8-byte hash of ``(kind, id, version)``; 64 buckets (by
``id[1]``) keep a count and the XOR of their items' hashes, updated in O(1) per change, and the
root is the XOR of all. Two stores with the same items have the same summary.

Summaries are *settled*: the changes of the last ``settle_s`` seconds are undone in them (a log
of their hashes is kept that long). A record in flight reaches neighbours a few hundred
milliseconds apart; without settling, a busy mesh (thousands of refreshes an hour) would show a
mismatch on most summaries and pay for bucket comparisons that the push is about to make moot.
Two neighbours that both got a change, or both not yet, agree; only a change older than
``settle_s`` that one of them lacks shows, and that is what anti-entropy is for.
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hyphal.crypto.signing import Verifier
from hyphal.identity import prefix64_for_public_key
from hyphal.membership import admission as adm_mod
from hyphal.membership.admission import Admission, AdmissionPolicy, Revocation
from hyphal.membership.names import NameIndex
from hyphal.membership.params import DEFAULT_PARAMS, MembershipParams
from hyphal.membership.record import EXPIRES_OFFSET, MemberRecord, decode_cached
from hyphal.wire.errors import DecodeError

KIND_RECORD = 1
KIND_ADMISSION = 2
KIND_REVOCATION = 3
KINDS = (KIND_REVOCATION, KIND_ADMISSION, KIND_RECORD)
"""In the order a batch should carry them: a revocation or admission before the record."""
BUCKETS = 64
INF = float("inf")

_HASH_IN = struct.Struct(">B8sQ")

COUNTERS = (
    "accepted",
    "duplicate",
    "malformed",
    "expired",
    "expiry-too-far",
    "rollback",
    "equivocation",
    "bad-signature",
    "prefix-collision",
    "origin-rate",
    "store-full",
    "revoked",
    "not-admitted",
    "not-private",
    "admission-unknown-issuer",
    "admission-bad-signature",
    "admission-expired-invite",
    "admission-superseded",
    "invite-reused",
    "revocation-not-admin",
    "revocation-bad-signature",
    "revocations-full",
    "unknown-kind",
    "expired-removed",
)


def item_hash(kind: int, item_id: bytes, version: int) -> int:
    digest = hashlib.blake2b(_HASH_IN.pack(kind, item_id, version), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def bucket_of(item_id: bytes) -> int:
    return item_id[1] % BUCKETS


@dataclass(slots=True)
class Item:
    kind: int
    item_id: bytes
    version: int
    raw: bytes
    hash: int
    tokens: float = 0.0
    """Records only: the origin's update-rate tokens, as of ``at``."""
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class Change:
    """One accepted change: what is stored for ``prefix`` now (None: it was removed)."""

    kind: int
    prefix: bytes
    record: MemberRecord | None
    old: MemberRecord | None = None


def _expires(raw: bytes) -> int:
    return int.from_bytes(raw[EXPIRES_OFFSET : EXPIRES_OFFSET + 4], "big")


class Store:
    """Records, admissions and revocations, with the summaries anti-entropy compares."""

    def __init__(
        self,
        verifier: Verifier,
        network: bytes,
        *,
        params: MembershipParams = DEFAULT_PARAMS,
        policy: AdmissionPolicy | None = None,
        started_wall: float = 0.0,
    ) -> None:
        self.verifier = verifier
        self.started_wall = started_wall
        """Wall time this store started empty. The late-redemption rule applies only to invites
        that expired after it (so the store had the grace to sync before judging). A store that
        started later cannot tell an old admission from a late one and judges it on its signed
        ``redeemed_at`` alone; otherwise no node could restart, or join, once the members'
        invites had expired."""
        self.network = network
        self.params = params
        self.policy = policy
        self._records: dict[bytes, Item] = {}
        self.admissions: dict[bytes, Admission] = {}
        self.redeemed: dict[bytes, bytes] = {}
        """invite id -> prefix of the member it admitted."""
        self.revoked: dict[bytes, Revocation] = {}
        self.names = NameIndex()
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._by_bucket: list[dict[tuple[int, bytes], Item]] = [{} for _ in range(BUCKETS)]
        self._total = 0
        self._count = [0] * BUCKETS
        self._xor = [0] * BUCKETS
        self._root = 0
        self._next_expiry = INF
        self._key: tuple[int, bytes] | None = None
        self._now = 0.0
        self._recent: deque[tuple[float, int, int, int, tuple[int, bytes]]] = deque()
        """(time, bucket, hash, +1 added / -1 removed, key) of the changes of the last settle_s."""
        self.observer: Callable[[int, bytes, int], None] | None = None
        """Called with (kind, id, version) for every item stored (the simulator's probe)."""

    def clone_from(self, other: Store) -> None:
        """Take ``other``'s items into this empty store: how the simulator starts thousands of
        nodes in the steady state without re-verifying. Items are copied (they hold per-node
        rate state); their bytes are shared, as they are immutable."""
        copies = {
            key: Item(i.kind, i.item_id, i.version, i.raw, i.hash, i.tokens, i.at)
            for bucket in other._by_bucket
            for key, i in bucket.items()
        }
        self._by_bucket = [{key: copies[key] for key in b} for b in other._by_bucket]
        self._records = {p: copies[(KIND_RECORD, p)] for p in other._records}
        self.admissions = dict(other.admissions)
        self.redeemed = dict(other.redeemed)
        self.revoked = dict(other.revoked)
        self.names = other.names.copy()
        self._total = other._total
        self._count = list(other._count)
        self._xor = list(other._xor)
        self._root = other._root
        self._next_expiry = other._next_expiry

    # ------------------------------------------------------------------ records
    def record(self, prefix: bytes) -> MemberRecord | None:
        """The record held for ``prefix`` (decoded on demand), or None."""
        item = self._records.get(prefix)
        return None if item is None else decode_cached(item.raw)

    def records(self) -> Iterator[MemberRecord]:
        for item in list(self._records.values()):
            yield decode_cached(item.raw)

    def record_version(self, prefix: bytes) -> int | None:
        item = self._records.get(prefix)
        return None if item is None else item.version

    def member_count(self) -> int:
        return len(self._records)

    # ------------------------------------------------------------------ summaries
    def settle(self) -> None:
        """Forget the recent-change log (the simulator's steady state: nothing is in flight)."""
        self._recent.clear()

    def exact_summary(self) -> tuple[int, int]:
        """(count, root) of everything stored now, recent changes included."""
        return self._total, self._root

    def _trim(self, now: float) -> None:
        recent = self._recent
        horizon = now - self.params.settle_s
        while recent and recent[0][0] <= horizon:
            recent.popleft()

    def summary(self, now: float) -> tuple[int, int]:
        """The settled (count, root): as it was before the changes of the last ``settle_s``."""
        self._trim(now)
        count, root = self._total, self._root
        for _, _, h, delta, _ in self._recent:
            root ^= h
            count -= delta
        return count, root

    def bucket_summaries(self, now: float) -> list[tuple[int, int]]:
        """The settled (count, XOR) of every bucket."""
        self._trim(now)
        counts, xors = list(self._count), list(self._xor)
        for _, b, h, delta, _ in self._recent:
            xors[b] ^= h
            counts[b] -= delta
        return list(zip(counts, xors, strict=True))

    def recent_items(self, now: float) -> list[Item]:
        """The items changed in the last ``settle_s`` that are still held (what settled
        summaries leave out, so a new neighbour is told about them directly)."""
        self._trim(now)
        keys = dict.fromkeys(key for *_, key in self._recent)
        return [item for key in keys if (item := self.get(*key)) is not None]

    def bucket_items(self, bucket: int) -> Iterator[Item]:
        yield from list(self._by_bucket[bucket].values())

    def version_of(self, kind: int, item_id: bytes) -> int | None:
        item = self._by_bucket[bucket_of(item_id)].get((kind, item_id))
        return None if item is None else item.version

    def get(self, kind: int, item_id: bytes) -> Item | None:
        return self._by_bucket[bucket_of(item_id)].get((kind, item_id))

    # ------------------------------------------------------------------ bookkeeping
    def _put(self, kind: int, item_id: bytes, version: int, raw: bytes) -> Item:
        old = self._drop(kind, item_id)
        h = item_hash(kind, item_id, version)
        item = Item(kind, item_id, version, raw, h)
        if old is not None:
            item.tokens, item.at = old.tokens, old.at
        b = bucket_of(item_id)
        self._by_bucket[b][(kind, item_id)] = item
        self._total += 1
        self._count[b] += 1
        self._xor[b] ^= h
        self._root ^= h
        self._recent.append((self._now, b, h, 1, (kind, item_id)))
        if kind == KIND_RECORD:
            self._records[item_id] = item
            self._next_expiry = min(self._next_expiry, _expires(raw))
        if self.observer is not None:
            self.observer(kind, item_id, version)
        return item

    def _drop(self, kind: int, item_id: bytes) -> Item | None:
        b = bucket_of(item_id)
        old = self._by_bucket[b].pop((kind, item_id), None)
        if old is None:
            return None
        if kind == KIND_RECORD:
            del self._records[item_id]
        self._total -= 1
        self._count[b] -= 1
        self._xor[b] ^= old.hash
        self._root ^= old.hash
        self._recent.append((self._now, b, old.hash, -1, (kind, item_id)))
        return old

    def _count_reason(self, reason: str) -> None:
        self.counters[reason] = self.counters.get(reason, 0) + 1

    def _remove_member(self, prefix: bytes, changes: list[Change]) -> None:
        old = self._drop(KIND_RECORD, prefix)
        if old is not None:
            rec = decode_cached(old.raw)
            self.names.update(prefix, rec, None)
            changes.append(Change(KIND_RECORD, prefix, None, rec))
        adm = self.admissions.pop(prefix, None)
        self._drop(KIND_ADMISSION, prefix)
        if adm is not None and self.redeemed.get(adm.invite.invite_id) == prefix:
            del self.redeemed[adm.invite.invite_id]

    # ------------------------------------------------------------------ ingest
    def ingest(
        self, kind: int, raw: bytes, wall: float, now: float
    ) -> tuple[str, list[Change], tuple[int, bytes] | None]:
        """Check and store one item: (counter name, accepted changes, the item's key if the
        item decoded)."""
        changes: list[Change] = []
        self._key = None
        self._now = now
        try:
            if kind == KIND_RECORD:
                reason = self._ingest_record(raw, wall, now, changes)
            elif kind == KIND_ADMISSION:
                reason = self._ingest_admission(raw, wall, changes)
            elif kind == KIND_REVOCATION:
                reason = self._ingest_revocation(raw, changes)
            else:
                reason = "unknown-kind"
        except DecodeError:
            reason = "malformed"
        self._count_reason(reason)
        return reason, changes, self._key

    def put_own(self, record: MemberRecord, now: float) -> None:
        """Store our own freshly signed record (no rate limit: the operator asked for it)."""
        self._now = now
        prefix = record.prefix
        old = self.record(prefix)
        item = self._put(KIND_RECORD, prefix, record.version, record.encode())
        item.tokens, item.at = float(self.params.origin_burst), now
        self.names.update(prefix, old, record)

    def admitted(self, prefix: bytes, key: bytes) -> bool:
        """Whether ``key`` may hold records here (always, in an open network)."""
        if prefix in self.revoked:
            return False
        if self.policy is None:
            return True
        adm = self.admissions.get(prefix)
        return adm is not None and adm.member == key

    def _ingest_record(self, raw: bytes, wall: float, now: float, changes: list[Change]) -> str:
        record = decode_cached(raw)
        prefix = record.prefix
        self._key = (KIND_RECORD, prefix)
        p = self.params
        if record.expires <= wall:
            return "expired"
        lifetime = max(p.record_ttl_s, p.tombstone_ttl_s)
        if record.expires > wall + lifetime + p.max_clock_skew_s:
            return "expiry-too-far"
        if prefix in self.revoked:
            return "revoked"
        held = self._records.get(prefix)
        if held is not None:
            if held.raw[2:34] != record.origin:
                return "prefix-collision"
            if record.version < held.version:
                return "rollback"
            if record.version == held.version:
                return "duplicate" if held.raw == raw else "equivocation"
        if not self.admitted(prefix, record.origin):
            return "not-admitted"
        if held is None and len(self._records) >= p.max_members:
            return "store-full"
        if not record.verify(self.verifier, self.network):
            return "bad-signature"
        if held is None:
            tokens = float(p.origin_burst)
        else:
            tokens = min(float(p.origin_burst), held.tokens + (now - held.at) * p.origin_rate_per_s)
        if tokens < 1.0:
            return "origin-rate"
        old = None if held is None else decode_cached(held.raw)
        item = self._put(KIND_RECORD, prefix, record.version, raw)
        item.tokens, item.at = tokens - 1.0, now
        self.names.update(prefix, old, record)
        changes.append(Change(KIND_RECORD, prefix, record, old))
        return "accepted"

    def may_invite(self, key: bytes) -> bool:
        prefix = prefix64_for_public_key(key)
        adm = self.admissions.get(prefix)
        return (
            adm is not None
            and adm.member == key
            and adm.invite.inviter
            and prefix not in self.revoked
        )

    def _ingest_admission(self, raw: bytes, wall: float, changes: list[Change]) -> str:
        adm = adm_mod.decode_admission(raw)
        if self.policy is None:
            return "not-private"
        prefix = adm.prefix
        self._key = (KIND_ADMISSION, prefix)
        if prefix in self.revoked:
            return "revoked"
        old = self.admissions.get(prefix)
        if old is not None:
            if old.encode() == raw:
                return "duplicate"
            if (adm.redeemed_at, adm.invite.invite_id) >= (old.redeemed_at, old.invite.invite_id):
                return "admission-superseded"
        invite_id = adm.invite.invite_id
        holder = self.redeemed.get(invite_id)
        reason = adm_mod.check_admission(
            adm,
            self.policy,
            self.verifier,
            self.network,
            wall=wall,
            first_seen=self.started_wall <= adm.invite.expires,
            may_invite=self.may_invite,
        )
        if reason is not None:
            return reason
        if holder is not None and holder != prefix:
            other = self.admissions[holder]
            if (other.redeemed_at, other.member) <= (adm.redeemed_at, adm.member):
                return "invite-reused"
            # The earlier redemption wins everywhere: the later one's member is out.
            self._count_reason("invite-reused")
            self._remove_member(holder, changes)
        if old is not None and self.redeemed.get(old.invite.invite_id) == prefix:
            del self.redeemed[old.invite.invite_id]
        self.admissions[prefix] = adm
        self.redeemed[invite_id] = prefix
        self._put(KIND_ADMISSION, prefix, adm.redeemed_at, raw)
        changes.append(Change(KIND_ADMISSION, prefix, self.record(prefix)))
        return "accepted"

    def _ingest_revocation(self, raw: bytes, changes: list[Change]) -> str:
        rev = adm_mod.decode_revocation(raw)
        if self.policy is None:
            return "not-private"
        prefix = rev.prefix
        self._key = (KIND_REVOCATION, prefix)
        if prefix in self.revoked:
            return "duplicate"
        if len(self.revoked) >= self.params.max_revocations:
            return "revocations-full"
        reason = adm_mod.check_revocation(rev, self.policy, self.verifier, self.network)
        if reason is not None:
            return reason
        self._remove_member(prefix, changes)
        self.revoked[prefix] = rev
        self._put(KIND_REVOCATION, prefix, rev.revoked_at, raw)
        changes.append(Change(KIND_REVOCATION, prefix, None))
        return "accepted"

    # ------------------------------------------------------------------ expiry
    def next_expiry(self) -> float:
        """Wall time at which :meth:`expire` has work (or may find none: a lower bound)."""
        return self._next_expiry

    def expire(self, wall: float, now: float) -> list[Change]:
        """Drop every record whose ``expires`` has passed."""
        self._now = now
        changes: list[Change] = []
        if wall < self._next_expiry:
            return changes
        soonest = INF
        for prefix, item in list(self._records.items()):
            expires = _expires(item.raw)
            if expires > wall:
                soonest = min(soonest, expires)
                continue
            rec = decode_cached(item.raw)
            self._drop(KIND_RECORD, prefix)
            self.names.update(prefix, rec, None)
            self._count_reason("expired-removed")
            changes.append(Change(KIND_RECORD, prefix, None, rec))
        self._next_expiry = soonest
        return changes

    # ------------------------------------------------------------------ views
    def lookup(self, name: str) -> MemberRecord | None:
        """The record that wins ``name``, or None."""
        prefix = self.names.winner(name)
        return None if prefix is None else self.record(prefix)

    def name_winner(self, record: MemberRecord) -> bool:
        """Whether ``record`` owns its name (True for unnamed records)."""
        return not record.name or self.names.winner(record.name) == record.prefix
