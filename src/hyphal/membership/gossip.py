"""The membership core: gossip of member records between neighbours, as a sans-IO state machine.

Driven like the router::

    core.neighbour_up(peer, now) / neighbour_down(peer, now)      -> actions
    core.handle_frame(peer, body, now)                            -> actions
    core.on_timer(now)                                            -> actions
    core.next_deadline()                                          -> float
    core.publish(now, name=..., ...) / core.leave(now)            -> actions

Actions are :class:`SendFrame` (a ``FRAME_MEMBERS`` body for one neighbour) and
:class:`MemberEvent` (something the node should log). ``now`` is the monotonic clock; wall time
(for versions and expiry) is ``now + wall_offset``.

Dissemination is lazy push plus anti-entropy:

* **Push.** An item accepted into the store is announced (HAVE, 17 bytes an item, batched for
  ``announce_delay_s``) to every neighbour but the one it came from; a neighbour that lacks it
  answers WANT, and gets the ITEM. A neighbour that already announced the item to us is not told.
  A WANT unanswered after ``want_timeout_s`` goes to another neighbour that announced the item.
* **Anti-entropy.** Every ``summary_interval_s`` each neighbour gets our (count, root hash). On a
  mismatch it answers with its 64 bucket hashes; we list the differing buckets (HAVE COMPLETE);
  it pushes what we lack and wants what it lacks. A new link starts with this exchange.
* **Budgets.** Every byte we send a neighbour is taken from its send bucket; ITEMs wait (in a
  bounded queue) while the bucket is empty. Frames beyond a neighbour's receive bucket are
  dropped and counted. Relays announce only what their store accepted, i.e. verified.

Reachability is not decided here: routing knows at once whether a member's /64 has a route, so
:meth:`MembershipCore.members` takes a ``reachable(prefix)`` predicate.
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hyphal.crypto.signing import Signer, Verifier
from hyphal.identity import address_for_public_key, prefix64_for_public_key
from hyphal.membership import record as rec_mod
from hyphal.membership import wire
from hyphal.membership.admission import AdmissionPolicy
from hyphal.membership.hlc import HybridClock
from hyphal.membership.params import DEFAULT_PARAMS, MembershipParams
from hyphal.membership.record import MemberRecord
from hyphal.membership.store import (
    BUCKETS,
    KIND_ADMISSION,
    KIND_RECORD,
    KIND_REVOCATION,
    KINDS,
    Change,
    Store,
    bucket_of,
)
from hyphal.wire.errors import DecodeError

INF = float("inf")
MAX_ALTERNATES = 4
_KIND_ORDER = {k: i for i, k in enumerate(KINDS)}

Key = tuple[int, bytes]

CORE_COUNTERS = (
    "frames-in",
    "frames-out",
    "bytes-in",
    "bytes-out",
    "malformed-frame",
    "recv-budget",
    "unknown-neighbour",
    "queue-overflow",
    "wants-sent",
    "wants-retried",
    "wants-abandoned",
    "summary-mismatch",
    "listing-limited",
)


@dataclass(frozen=True, slots=True)
class SendFrame:
    peer: int
    body: bytes


@dataclass(frozen=True, slots=True)
class MemberEvent:
    """For the log: ``what`` is joined, changed, left, removed, expired, name-lost, name-won,
    admitted (an admission was accepted) or revoked (a revocation was accepted)."""

    what: str
    prefix: bytes
    name: str
    detail: str = ""


Action = SendFrame | MemberEvent


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """One member as ``hyphal members`` and the API show it."""

    public_key: bytes
    address: str
    name: str
    region: str
    roles: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]
    endpoints: tuple[str, ...]
    software: str
    version: int
    expires: int
    left: bool
    reachable: bool
    owns_name: bool
    """False when another member won this name (both stay visible)."""
    is_self: bool


class ByteBucket:
    """A byte budget: ``rate`` bytes a second, at most ``burst`` saved; may go into debt."""

    __slots__ = ("_at", "_burst", "_rate", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self.tokens = float(burst)
        self._at = now

    def refill(self, now: float) -> None:
        if now > self._at:
            self.tokens = min(self._burst, self.tokens + (now - self._at) * self._rate)
            self._at = now

    def spend(self, n: int, now: float) -> None:
        self.refill(now)
        self.tokens -= n

    def take(self, n: int, now: float) -> bool:
        """Spend ``n`` only if the bucket holds them."""
        self.refill(now)
        if self.tokens < n:
            return False
        self.tokens -= n
        return True

    def ready_at(self) -> float:
        """When the bucket will hold at least one byte (now, if it does)."""
        if self.tokens > 0:
            return self._at
        return self._at + (1.0 - self.tokens) / self._rate


@dataclass
class _Neighbour:
    peer: int
    send: ByteBucket
    recv: ByteBucket
    summary_at: float
    announce: dict[Key, int] = field(default_factory=dict)
    announce_at: float = INF
    out: OrderedDict[Key, None] = field(default_factory=OrderedDict)
    last_buckets_reply: float = -INF
    last_listing: float = -INF


@dataclass
class _Want:
    version: int
    asked: int
    asked_at: float
    alternates: list[int] = field(default_factory=list)


class MembershipCore:
    """One node's membership: its own record, the store, and gossip with its neighbours."""

    def __init__(
        self,
        public_key: bytes,
        signer: Signer,
        verifier: Verifier,
        network: bytes,
        now: float,
        *,
        wall_offset: float,
        rng: random.Random,
        params: MembershipParams = DEFAULT_PARAMS,
        policy: AdmissionPolicy | None = None,
        own_admission: bytes | None = None,
    ) -> None:
        self.public_key = public_key
        self.prefix = prefix64_for_public_key(public_key)
        self._signer = signer
        self.params = params
        self.network = network
        self.wall_offset = wall_offset
        self._rng = rng
        self.store = Store(
            verifier, network, params=params, policy=policy, started_wall=now + wall_offset
        )
        self.clock = HybridClock()
        self.counters: dict[str, int] = dict.fromkeys(CORE_COUNTERS, 0)
        self._neighbours: dict[int, _Neighbour] = {}
        self._wants: dict[Key, _Want] = {}
        self._want_queue: deque[tuple[float, Key]] = deque()
        self._own: MemberRecord | None = None
        self._fields: dict[str, object] = {}
        self._refresh_at = INF
        self._owned_name = True
        self._have_step = max(1, (params.max_frame - wire.HAVE_OVERHEAD) // wire.ENTRY_SIZE)
        self._want_step = max(1, (params.max_frame - wire.MSG_HEADER) // wire.WANT_SIZE)
        if own_admission is not None:
            reason, _, _ = self.store.ingest(KIND_ADMISSION, own_admission, self.wall(now), now)
            if reason not in ("accepted", "duplicate"):
                raise ValueError(f"our own admission is refused: {reason}")

    # ------------------------------------------------------------------ clocks
    def wall(self, now: float) -> float:
        return now + self.wall_offset

    # ------------------------------------------------------------------ own record
    @property
    def own_record(self) -> MemberRecord | None:
        return self._own

    def publish(self, now: float, **fields: object) -> list[Action]:
        """Sign and announce our record with ``fields`` changed (name, region, roles, tags,
        endpoints, software, extension). Raises RecordError (e.g. RecordTooLarge) and changes
        nothing if the record would be invalid."""
        merged = {**self._fields, **fields}
        old = self._own
        wall = self.wall(now)
        version = self.clock.next(wall)
        name = str(merged.get("name", ""))
        if old is not None and not old.left and old.name == name:
            name_since = old.name_since
        else:
            name_since = version
        record = rec_mod.build(
            self._signer,
            self.network,
            origin=self.public_key,
            version=version,
            expires=int(wall) + self.params.record_ttl_s,
            name_since=name_since,
            **merged,  # type: ignore[arg-type]
        )
        self._fields = merged
        self._refresh_at = now + self.params.record_ttl_s * self.params.refresh_fraction * (
            0.9 + 0.2 * self._rng.random()
        )
        return self._install_own(record, now)

    def schedule_refresh(self, at: float) -> None:
        """Republish at ``at`` instead (the simulator spreads a steady state's refreshes)."""
        if self._own is not None and not self._own.left:
            self._refresh_at = at

    def leave(self, now: float) -> list[Action]:
        """Publish a signed tombstone (a graceful leave); no refreshes after it."""
        wall = self.wall(now)
        record = rec_mod.build(
            self._signer,
            self.network,
            origin=self.public_key,
            version=self.clock.next(wall),
            expires=int(wall) + self.params.tombstone_ttl_s,
            left=True,
        )
        self._refresh_at = INF
        return self._install_own(record, now)

    def _install_own(self, record: MemberRecord, now: float) -> list[Action]:
        self.store.put_own(record, now)
        self._own = record
        actions: list[Action] = []
        self._announce((KIND_RECORD, self.prefix), record.version, None, now)
        self._check_name(actions)
        return actions

    def submit(self, kind: int, raw: bytes, now: float) -> tuple[str, list[Action]]:
        """An item handed over locally (a revocation the operator signed, an admission): checked
        like any other and, if accepted, announced to every neighbour. Returns the store's
        verdict (``"accepted"`` or the refusal's counter name) and the actions."""
        reason, changes, _ = self.store.ingest(kind, raw, self.wall(now), now)
        actions: list[Action] = []
        for change in changes:
            item = self.store.get(change.kind, change.prefix)
            if item is not None:
                self._announce((change.kind, change.prefix), item.version, None, now)
            self._event(change, actions)
        return reason, actions

    def is_revoked(self, public_key: bytes) -> bool:
        """Whether ``public_key`` was revoked (the link layer refuses its links)."""
        return prefix64_for_public_key(public_key) in self.store.revoked

    # ------------------------------------------------------------------ neighbours
    def neighbour_up(self, peer: int, now: float) -> list[Action]:
        p = self.params
        nb = _Neighbour(
            peer,
            ByteBucket(p.send_rate_bps, p.send_burst, now),
            ByteBucket(p.recv_rate_bps, p.recv_burst, now),
            summary_at=now + self._summary_interval(),
        )
        self._neighbours[peer] = nb
        # A new link starts with anti-entropy: our settled summary, plus a HAVE of what the
        # settled summary leaves out (changes of the last settle_s, pushed before this link).
        count, root = self.store.summary(now)
        out = [wire.encode_summary(count, root)]
        recent = [(i.kind, i.item_id, i.version) for i in self.store.recent_items(now)]
        step = self._have_step
        for k in range(0, len(recent), step):
            out.append(wire.encode_have(False, 0, recent[k : k + step]))
        return self._emit(nb, out, now)

    def neighbour_down(self, peer: int, now: float) -> list[Action]:
        self._neighbours.pop(peer, None)
        for want in self._wants.values():
            if peer in want.alternates:
                want.alternates.remove(peer)
        return []

    def neighbours(self) -> list[int]:
        return list(self._neighbours)

    def _summary_interval(self) -> float:
        return self.params.summary_interval_s * (0.75 + 0.5 * self._rng.random())

    # ------------------------------------------------------------------ input
    def handle_frame(self, peer: int, body: bytes | memoryview, now: float) -> list[Action]:
        """One FRAME_MEMBERS body from ``peer``. Malformed or over-budget frames are counted and
        dropped (the link stays up: a relay's bad frame says nothing about the honest mesh)."""
        nb = self._neighbours.get(peer)
        if nb is None:
            self.counters["unknown-neighbour"] += 1
            return []
        size = len(body)
        self.counters["frames-in"] += 1
        self.counters["bytes-in"] += size
        if not nb.recv.take(size, now):
            self.counters["recv-budget"] += 1
            return []
        try:
            messages = wire.decode_frame(body, self.params.max_frame * 4)
        except DecodeError:
            self.counters["malformed-frame"] += 1
            return []
        actions: list[Action] = []
        out: list[bytes] = []
        wants: list[Key] = []
        for msg in messages:
            if isinstance(msg, wire.ItemMsg):
                self._on_item(nb, msg, now, actions)
            elif isinstance(msg, wire.Have):
                self._on_have(nb, msg, now, wants, out)
            elif isinstance(msg, wire.Want):
                self._enqueue(nb, list(msg.keys))
            elif isinstance(msg, wire.Summary):
                self._on_summary(nb, msg, now, out)
            elif isinstance(msg, wire.Buckets):
                self._on_buckets(nb, msg, now, out)
        if wants:
            out.extend(self._want_messages(wants))
        actions.extend(self._emit(nb, out, now))
        return actions

    def _on_summary(self, nb: _Neighbour, msg: wire.Summary, now: float, out: list[bytes]) -> None:
        count, root = self.store.summary(now)
        if (msg.count, msg.root) == (min(count, 0xFFFFFFFF), root):
            return
        self.counters["summary-mismatch"] += 1
        if now - nb.last_buckets_reply < self.params.bucket_reply_interval_s:
            return
        nb.last_buckets_reply = now
        out.append(wire.encode_buckets(self.store.bucket_summaries(now)))

    def _listing(self, mask: int, reply: bool) -> list[bytes]:
        """HAVE COMPLETE messages listing every item we hold in the buckets of ``mask``; each
        message is complete for the buckets it names and fits one frame."""
        out: list[bytes] = []
        step = self._have_step
        listed: list[tuple[int, bytes, int]] = []
        part = 0
        for b in range(BUCKETS):
            if not mask >> b & 1:
                continue
            items = [(i.kind, i.item_id, i.version) for i in self.store.bucket_items(b)]
            if part and len(listed) + len(items) > step:
                out.append(wire.encode_have(True, part, listed, reply=reply))
                listed, part = [], 0
            part |= 1 << b
            listed.extend(items)
        if part:
            for k in range(0, max(1, len(listed)), step):
                out.append(wire.encode_have(True, part, listed[k : k + step], reply=reply))
        return out

    def _on_buckets(self, nb: _Neighbour, msg: wire.Buckets, now: float, out: list[bytes]) -> None:
        if now - nb.last_listing < self.params.bucket_reply_interval_s:
            self.counters["listing-limited"] += 1
            return
        ours = self.store.bucket_summaries(now)
        mask = 0
        for b in range(BUCKETS):
            if msg.buckets[b] != (min(ours[b][0], 0xFFFF), ours[b][1]):
                mask |= 1 << b
        if mask:
            nb.last_listing = now
            out.extend(self._listing(mask, reply=False))

    def _on_have(
        self, nb: _Neighbour, msg: wire.Have, now: float, wants: list[Key], out: list[bytes]
    ) -> None:
        """An announcement (pull what is newer) or a listing (pull what is newer, and answer
        with our own listing if we hold something the lister lacks: it pulls too). Anti-entropy
        only ever pulls, so a new member that lists to several neighbours wants each item once
        (the others are kept as alternates) instead of having every neighbour push it all."""
        store = self.store
        listed: set[Key] = set()
        push: list[Key] = []
        we_have_more = False
        for kind, item_id, version in msg.entries:
            key = (kind, item_id)
            listed.add(key)
            nb.announce.pop(key, None)  # it has it: no need to tell it
            ours = store.version_of(kind, item_id)
            if ours is not None and ours >= version:
                if ours > version:
                    we_have_more = True
                    if not msg.complete:
                        push.append(key)
                continue
            if kind == KIND_RECORD and item_id in store.revoked:
                continue
            want = self._wants.get(key)
            if want is not None and want.version >= version:
                if (
                    nb.peer != want.asked
                    and nb.peer not in want.alternates
                    and len(want.alternates) < MAX_ALTERNATES
                ):
                    want.alternates.append(nb.peer)
                continue
            if want is None and len(self._wants) >= self.params.max_pending_wants:
                continue
            self._wants[key] = _Want(version, nb.peer, now)
            self._want_queue.append((now + self.params.want_timeout_s, key))
            wants.append(key)
        if msg.complete and not msg.reply:
            if not we_have_more:
                we_have_more = any(
                    (i.kind, i.item_id) not in listed
                    for b in range(BUCKETS)
                    if msg.mask >> b & 1
                    for i in store.bucket_items(b)
                )
            if we_have_more:
                if now - nb.last_listing < self.params.bucket_reply_interval_s:
                    self.counters["listing-limited"] += 1
                else:
                    nb.last_listing = now
                    out.extend(self._listing(msg.mask, reply=True))
        if push:
            self._enqueue(nb, push)

    def _want_messages(self, wants: list[Key]) -> list[bytes]:
        self.counters["wants-sent"] += len(wants)
        wants.sort(key=lambda k: _KIND_ORDER.get(k[0], 9))
        step = self._want_step
        return [wire.encode_want(wants[i : i + step]) for i in range(0, len(wants), step)]

    def _on_item(
        self, nb: _Neighbour, msg: wire.ItemMsg, now: float, actions: list[Action]
    ) -> None:
        store = self.store
        raw = msg.raw
        reason, changes, key = store.ingest(msg.kind, raw, self.wall(now), now)
        if reason == "duplicate" and key is not None:
            self._wants.pop(key, None)
        elif reason == "accepted":
            for change in changes:
                item = store.get(change.kind, change.prefix)
                if item is not None:
                    key = (change.kind, change.prefix)
                    want = self._wants.get(key)
                    if want is not None and want.version <= item.version:
                        del self._wants[key]
                    self._announce(key, item.version, nb.peer, now)
                self._event(change, actions)
            held = store.record_version(self.prefix)
            if held is not None and (self._own is None or held > self._own.version):
                # An older life of ours, newer than what we hold: move past it and republish.
                self.clock.observe(held)
                if self._own is not None and not self._own.left:
                    actions.extend(self.publish(now))
            self._check_name(actions)

    def _event(self, change: Change, actions: list[Action]) -> None:
        if change.kind == KIND_ADMISSION:
            actions.append(MemberEvent("admitted", change.prefix, ""))
        elif change.kind == KIND_REVOCATION:
            actions.append(MemberEvent("revoked", change.prefix, ""))
        if change.prefix == self.prefix or change.kind != KIND_RECORD:
            return
        new, old = change.record, change.old
        if new is None:
            name = old.name if old is not None else ""
            actions.append(MemberEvent("removed", change.prefix, name))
        elif new.left:
            actions.append(MemberEvent("left", change.prefix, old.name if old else ""))
        elif old is None or old.left:
            actions.append(MemberEvent("joined", change.prefix, new.name))
        elif old.name != new.name:
            actions.append(MemberEvent("changed", change.prefix, new.name, f"was {old.name!r}"))

    def _check_name(self, actions: list[Action]) -> None:
        own = self._own
        if own is None or own.left or not own.name:
            self._owned_name = True
            return
        owns = self.store.name_winner(own)
        if owns != self._owned_name:
            self._owned_name = owns
            if owns:
                actions.append(MemberEvent("name-won", self.prefix, own.name))
            else:
                winner = self.store.names.winner(own.name) or b""
                actions.append(
                    MemberEvent(
                        "name-lost",
                        self.prefix,
                        own.name,
                        f"{own.name!r} belongs to {winner.hex()}, which claimed it first",
                    )
                )

    # ------------------------------------------------------------------ output
    def _announce(self, key: Key, version: int, source: int | None, now: float) -> None:
        at = now + self.params.announce_delay_s
        for nb in self._neighbours.values():
            if nb.peer == source:
                continue
            nb.announce[key] = version
            if nb.announce_at > at:
                nb.announce_at = at

    def _enqueue(self, nb: _Neighbour, keys: list[Key]) -> None:
        keys = sorted(keys, key=lambda k: _KIND_ORDER.get(k[0], 9))
        out = nb.out
        for key in keys:
            out[key] = None
        while len(out) > self.params.max_queue:
            out.popitem(last=False)
            self.counters["queue-overflow"] += 1

    def _emit(self, nb: _Neighbour, messages: list[bytes], now: float) -> list[Action]:
        """Pack ``messages`` plus whatever ITEMs the budget allows into frames for ``nb``."""
        store = self.store
        limit = self.params.max_frame
        if nb.out:
            nb.send.refill(now)
            budget = nb.send.tokens - sum(len(m) for m in messages)
            while nb.out and budget > 0:
                key, _ = nb.out.popitem(last=False)
                item = store.get(*key)
                if item is None:
                    continue
                m = wire.encode_item(item.kind, item.raw)
                messages.append(m)
                budget -= len(m)
        if not messages:
            return []
        actions: list[Action] = []
        frame: list[bytes] = []
        size = 0
        for m in messages:
            if frame and size + len(m) > limit:
                actions.append(self._frame(nb, frame, size, now))
                frame, size = [], 0
            frame.append(m)
            size += len(m)
        if frame:
            actions.append(self._frame(nb, frame, size, now))
        return actions

    def _frame(self, nb: _Neighbour, parts: list[bytes], size: int, now: float) -> SendFrame:
        nb.send.spend(size, now)
        self.counters["frames-out"] += 1
        self.counters["bytes-out"] += size
        return SendFrame(nb.peer, b"".join(parts))

    # ------------------------------------------------------------------ timers
    def next_deadline(self) -> float:
        deadline = min(self._refresh_at, self.store.next_expiry() - self.wall_offset)
        if self._want_queue:
            deadline = min(deadline, self._want_queue[0][0])
        for nb in self._neighbours.values():
            deadline = min(deadline, nb.summary_at, nb.announce_at)
            if nb.out:
                deadline = min(deadline, nb.send.ready_at())
        return deadline

    def on_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        wall = self.wall(now)
        for change in self.store.expire(wall, now):
            if change.record is None and change.old is not None and change.prefix != self.prefix:
                actions.append(MemberEvent("expired", change.prefix, change.old.name))
        own = self._own
        # Refresh on schedule, or at once if our record expired anyway (the wall clock jumped,
        # e.g. after a suspend): a live node never drops out of the membership by itself.
        if own is not None and not own.left and (now >= self._refresh_at or own.expires <= wall):
            actions.extend(self.publish(now))
        retry: dict[int, list[Key]] = {}
        queue = self._want_queue
        while queue and queue[0][0] <= now:
            _, key = queue.popleft()
            want = self._wants.get(key)
            if want is None or want.asked_at + self.params.want_timeout_s > now:
                continue
            if want.alternates:
                want.asked = want.alternates.pop(0)
                want.asked_at = now
                queue.append((now + self.params.want_timeout_s, key))
                retry.setdefault(want.asked, []).append(key)
                self.counters["wants-retried"] += 1
            else:
                del self._wants[key]
                self.counters["wants-abandoned"] += 1
        for nb in self._neighbours.values():
            out: list[bytes] = []
            if nb.peer in retry:
                out.extend(self._want_messages(retry[nb.peer]))
            if nb.announce_at <= now:
                entries = [(k[0], k[1], v) for k, v in nb.announce.items()]
                nb.announce.clear()
                nb.announce_at = INF
                step = self._have_step
                for i in range(0, len(entries), step):
                    out.append(wire.encode_have(False, 0, entries[i : i + step]))
            if nb.summary_at <= now:
                nb.summary_at = now + self._summary_interval()
                count, root = self.store.summary(now)
                out.append(wire.encode_summary(count, root))
            actions.extend(self._emit(nb, out, now))
        self._check_name(actions)
        return actions

    # ------------------------------------------------------------------ views
    def members(self, reachable: Callable[[bytes], bool]) -> list[MemberInfo]:
        """Every member we hold a record for, with routing's reachability, sorted by name."""
        out = []
        for r in self.store.records():
            prefix = r.prefix
            is_self = prefix == self.prefix
            out.append(
                MemberInfo(
                    public_key=r.origin,
                    address=str(address_for_public_key(r.origin)),
                    name=r.name,
                    region=r.region,
                    roles=r.roles,
                    tags=r.tags,
                    endpoints=r.endpoints,
                    software=r.software,
                    version=r.version,
                    expires=r.expires,
                    left=r.left,
                    reachable=is_self or (not r.left and reachable(prefix)),
                    owns_name=self.store.name_winner(r),
                    is_self=is_self,
                )
            )
        out.sort(key=lambda m: (m.name == "", m.name, m.public_key))
        return out

    def lookup(self, name: str) -> MemberRecord | None:
        """The live record that owns ``name`` (a tombstone owns no name)."""
        return self.store.lookup(name)

    def bucket_index(self, item_id: bytes) -> int:
        return bucket_of(item_id)
