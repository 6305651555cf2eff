"""On-demand route acquisition: a sans-IO routing core with bounded per-node state (prototype).

The full-table router (:mod:`hyphal.routing.router`) keeps a route to every member at every node.
This core keeps routes only for

* its **neighbourhood**: the prefixes of nodes within ``ball_radius`` hops, learned from scoped
  announcements (an update carries how many more hops it may travel), and
* the prefixes it **talks to** (its interests) and those it relays for others, learned on demand
  with a **route query**: flooded in expanding rings (TTL 4, 8, 16, ...), deduplicated by query id,
  answered by the origin or by any node holding a route; the answer (a signed announcement plus a
  metric) travels back along the reverse path of the query and installs a route at every hop.

Loop freedom is Babel's (RFC 8966 3.5): every node keeps feasibility distances for what it
advertised and accepts only feasible updates, whoever sent them and whyever. An answer that is
unfeasible at some hop turns into a *directed* query for a newer seqno that walks along routes to
the origin, which bumps its seqno (rate-limited); the new seqno is feasible everywhere.

State is bounded by construction: neighbourhood routes (``max_ball_prefixes``), on-demand routes
(``max_ondemand_prefixes``), the query cache (``query_cache_max``) and per-neighbour query budgets
(token buckets). See docs/scaling-ondemand.md for the design and its measured cost.

The core follows the project's sans-IO rules: inputs are ``neighbour_up/down``, ``handle``,
``want`` and ``on_timer``, each given ``now``; outputs are :class:`Send`, :class:`PeerDead`,
:class:`Acquired` and :class:`Unreachable` actions. It runs in the simulator through
:mod:`hyphal.sim.ondemandnet` on the shared :class:`~hyphal.sim.engine.Engine`.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from hyphal.crypto.signing import Signer, Verifier
from hyphal.identity import prefix64_for_public_key
from hyphal.routing.bucket import TokenBucket
from hyphal.routing.metric import INFINITY, metric_add, seqno_newer, seqno_newer_or_equal
from hyphal.sim.ondemand_wire import (
    QUERY_DIRECTED,
    QUERY_LOOKUP,
    QUERY_SEQNO,
    UPDATE_BALL,
    UPDATE_LANDMARK,
    UPDATE_REGISTER,
    UPDATE_REPLY,
    Hello,
    Query,
    Tlv,
    Update,
    decode,
    encode,
)
from hyphal.wire.control import announcement_message
from hyphal.wire.errors import DecodeError

INF = float("inf")
METRIC_UNIT_S = 100e-6
"""One metric unit is 100 µs of one-way latency, as in the full-table router."""


@dataclass(frozen=True)
class OnDemandParams:
    hello_interval: float = 0.25
    dead_interval: float = 1.0
    dump_interval: float = 30.0
    """Neighbourhood announcements are repeated to every neighbour this often (jittered)."""
    ball_radius: int = 2
    """A node's own announcement reaches the nodes up to this many hops away."""
    ondemand_lifetime: float = 120.0
    """An on-demand route lapses this long after its last answer unless refreshed."""
    refresh_before: float = 20.0
    """An interest re-confirms its route (directed query) this long before it lapses."""
    landmark_scope: int = 64
    """A landmark's announcement reaches every member (up to this many hops)."""
    register_delay: float = 2.0
    """A member registers with its rendezvous landmark this long after boot, and again this long
    after its view of the landmark set last changed (debounced); then every ``dump_interval``."""
    lookup_timeouts: tuple[float, ...] = (0.8, 1.5)
    """Lookups towards the rendezvous landmark (tried first when landmarks are known)."""
    local_ttl: int = 2
    """The first lookup goes with a flood of this TTL, for destinations a few hops away."""
    ring_ttls: tuple[int, ...] = (8, 16, 32, 64)
    ring_timeouts: tuple[float, ...] = (0.6, 1.2, 2.0, 3.0)
    """Flooded rings: the fallback when lookups fail, and the only search without landmarks."""
    retry_after: float = 10.0
    """An interest whose every ring went unanswered is tried again after this long."""
    query_cache_s: float = 5.0
    query_cache_max: int = 4096
    max_ball_prefixes: int = 4096
    max_ondemand_prefixes: int = 2048
    neighbour_query_rate: float = 50.0
    neighbour_query_burst: int = 100
    own_query_rate: float = 20.0
    own_query_burst: int = 50
    bump_rate: float = 1.0
    bump_burst: int = 3
    cost_floor: int = 10
    hysteresis_abs: int = 5
    hysteresis_rel: float = 0.03
    max_payload: int = 8192
    sweep_interval: float = 1.0
    lifetime: float = 3600.0
    max_clock_skew: float = 300.0


DEFAULT_ONDEMAND = OnDemandParams()


@dataclass(frozen=True, slots=True)
class Send:
    peer: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class PeerDead:
    peer: int


@dataclass(frozen=True, slots=True)
class Acquired:
    """A route for an interest was installed (first time, or again after a loss)."""

    prefix: bytes
    metric: int


@dataclass(frozen=True, slots=True)
class Unreachable:
    """Every ring of queries for an interest went unanswered."""

    prefix: bytes


Action = Send | PeerDead | Acquired | Unreachable


@dataclass(slots=True)
class Route:
    peer: int
    seqno: int
    metric: int
    """As advertised by ``peer`` (without our link cost)."""
    router_id: bytes
    issued: int
    signature: bytes
    scope: int
    ball: bool
    expires: float
    landmark: bool = False


@dataclass(slots=True)
class Neighbour:
    cost: int
    last_heard: float
    bucket: TokenBucket


@dataclass(slots=True)
class Interest:
    since: float
    ring: int = -1
    """Index of the ring being tried, -1 when no query is outstanding."""
    query_id: int = 0
    deadline: float = INF
    refresh_at: float = INF


@dataclass(slots=True)
class Pending:
    """One query we passed on: where answers go back to, and the best metric sent there."""

    want: int | None
    ingress: int
    best: int = INFINITY
    at: float = 0.0


@dataclass
class Counters:
    values: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, n: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + n


class OnDemandNode:
    """One member's on-demand routing state machine (see the module docstring)."""

    def __init__(
        self,
        public_key: bytes,
        signer: Signer,
        params: OnDemandParams,
        now: float,
        rng: random.Random,
        *,
        verifier: Verifier,
        router_id_suffix: bytes,
        wall_clock: Callable[[], float],
        landmark: bool = False,
    ) -> None:
        self.params = params
        self.landmark = landmark
        self.prefix = prefix64_for_public_key(public_key)
        self.router_id = public_key + router_id_suffix
        self._signer = signer
        self._verifier = verifier
        self._wall = wall_clock
        self._rng = rng
        self.seqno = 0
        self.issued = int(wall_clock())
        self.signature = signer.sign(
            announcement_message(self.prefix, 0, self.router_id, self.issued)
        )
        self._bumps = TokenBucket(params.bump_rate, params.bump_burst, now)
        self._own_queries = TokenBucket(params.own_query_rate, params.own_query_burst, now)
        self.neighbours: dict[int, Neighbour] = {}
        self.routes: dict[bytes, dict[int, Route]] = {}
        self.selected: dict[bytes, Route] = {}
        self.fd: dict[tuple[bytes, bytes], tuple[int, int]] = {}
        self.advertised: dict[bytes, set[int]] = {}
        """On-demand prefixes: the neighbours we answered, who must hear of changes."""
        self._adv_metric: dict[bytes, int] = {}
        self.interests: dict[bytes, Interest] = {}
        self.pending: OrderedDict[int, list[Pending]] = OrderedDict()
        self._ball_count = 0
        self._ondemand_count = 0
        self._dirty = False
        self._landmarks: list[bytes] | None = None
        """Known landmark prefixes (ours included), recomputed after the set changed."""
        self._rendezvous: dict[bytes, bytes | None] = {}
        self._register_at = now + params.register_delay
        self._reg_via: dict[bytes, int] = {}
        self._reregistered = -INF
        """Prefixes (ours included) whose registration we passed on, and to which neighbour."""
        self._reregister: dict[bytes, int] = {}
        """Registrations held back for a newer seqno (prefix -> the seqno asked for)."""
        self._parked: dict[bytes, list[int]] = {}
        """Lookups that reached us as the rendezvous before the destination's registration did
        (prefix -> query ids); answered when a route arrives, forgotten with the query cache."""
        self._deferred: list[tuple[int, int]] = []
        """(query id, peer) of seqno queries for our prefix waiting for a bump token."""
        self._bump_want = 0
        self._bump_at = INF
        self._heap: list[tuple[float, int, bytes]] = []
        self._heap_seq = 0
        self._tick_at = now + rng.random() * params.hello_interval
        self._dump_at = now + params.dump_interval * (0.9 + 0.1 * rng.random())
        self._sweep_at = now + params.sweep_interval
        self._hello_seqno = 0
        self._out: dict[int, list[Tlv]] = {}
        self._actions: list[Action] = []
        self.counters = Counters()

    # ------------------------------------------------------------------ inputs

    def neighbour_up(self, peer: int, latency_s: float, now: float) -> list[Action]:
        """A link to ``peer`` is open; ``latency_s`` is its measured one-way latency."""
        cost = max(self.params.cost_floor, round(latency_s / METRIC_UNIT_S))
        bucket = TokenBucket(
            self.params.neighbour_query_rate, self.params.neighbour_query_burst, now
        )
        self.neighbours[peer] = Neighbour(cost, now, bucket)
        self._dump_to(peer)
        return self._flush()

    def neighbour_down(self, peer: int, now: float) -> list[Action]:
        self._drop_neighbour(peer, now)
        return self._flush()

    def handle(self, peer: int, payload: bytes, now: float) -> list[Action]:
        nb = self.neighbours.get(peer)
        if nb is None:
            return []
        try:
            tlvs = decode(payload)
        except DecodeError:
            self.counters.add("decode_errors")
            return []
        nb.last_heard = now
        for tlv in tlvs:
            if isinstance(tlv, Update):
                self._on_update(peer, tlv, now)
            elif isinstance(tlv, Query):
                self._on_query(peer, tlv, now)
        return self._flush()

    def want(self, prefix: bytes, now: float) -> list[Action]:
        """Start (or keep) talking to ``prefix``: acquire a route unless one is held already."""
        if prefix == self.prefix or prefix in self.interests:
            return []
        interest = self.interests[prefix] = Interest(since=now)
        if prefix in self.selected:
            self._acquired(prefix, interest, now)
        else:
            self._start_ring(prefix, interest, 0, now)
        return self._flush()

    def forget(self, prefix: bytes) -> None:
        """Stop talking to ``prefix``; its route lapses on its own."""
        self.interests.pop(prefix, None)

    def next_deadline(self) -> float:
        top = self._heap[0][0] if self._heap else INF
        return min(
            self._tick_at, self._dump_at, self._sweep_at, self._register_at, self._bump_at, top
        )

    def on_timer(self, now: float) -> list[Action]:
        p = self.params
        if now >= self._tick_at:
            self._tick_at = now + p.hello_interval * (0.8 + 0.2 * self._rng.random())
            self._hello_seqno = (self._hello_seqno + 1) & 0xFFFF
            hello = Hello(self._hello_seqno, int(p.hello_interval * 100), 0)
            for peer, nb in list(self.neighbours.items()):
                if now >= nb.last_heard + p.dead_interval:
                    self.counters.add("neighbours_dead")
                    self._actions.append(PeerDead(peer))
                    self._drop_neighbour(peer, now)
                else:
                    self._queue(peer, hello)
        if now >= self._dump_at:
            self._dump_at = now + p.dump_interval * (0.9 + 0.1 * self._rng.random())
            for peer in self.neighbours:
                self._dump_to(peer)
        if now >= self._sweep_at:
            self._sweep_at = now + p.sweep_interval
            self._sweep(now)
        if now >= self._register_at:
            self._register_at = now + p.dump_interval * (0.9 + 0.1 * self._rng.random())
            self._register()
        if now >= self._bump_at:
            self._deferred_bump(now)
        while self._heap and self._heap[0][0] <= now:
            _, _, prefix = heapq.heappop(self._heap)
            self._interest_timer(prefix, now)
        return self._flush()

    # ------------------------------------------------------------------ views

    def next_hop(self, prefix: bytes) -> int | None:
        route = self.selected.get(prefix)
        return None if route is None else route.peer

    def state_size(self) -> dict[str, int]:
        """Entries held: routes (all, neighbourhood prefixes, on-demand prefixes), query cache."""
        return {
            "routes": sum(len(t) for t in self.routes.values()),
            "ballPrefixes": self._counts()[0],
            "ondemandPrefixes": self._counts()[1],
            "feasibility": len(self.fd),
            "pendingQueries": len(self.pending),
            "interests": len(self.interests),
        }

    # ------------------------------------------------------------------ updates

    def _authentic(self, u: Update) -> bool:
        wall = self._wall()
        p = self.params
        if u.issued + p.lifetime + p.max_clock_skew < wall or u.issued > wall + p.max_clock_skew:
            self.counters.add("updates_rejected_stale")
            return False
        if prefix64_for_public_key(u.router_id[:32]) != u.prefix:
            self.counters.add("updates_rejected_key")
            return False
        message = announcement_message(u.prefix, u.seqno, u.router_id, u.issued)
        if not self._verifier.verify(u.router_id[:32], message, u.signature):
            self.counters.add("updates_rejected_signature")
            return False
        return True

    def _feasible(self, prefix: bytes, router_id: bytes, seqno: int, metric: int) -> bool:
        fd = self.fd.get((prefix, router_id))
        if fd is None or metric >= INFINITY:
            return True
        return seqno_newer(seqno, fd[0]) or (seqno == fd[0] and metric < fd[1])

    def _on_update(self, peer: int, u: Update, now: float) -> None:
        prefix = u.prefix
        if prefix == self.prefix:
            if u.flags & UPDATE_REGISTER and now >= self._reregistered + 0.5:
                # A relay's way to our landmark leads back through us: we register afresh.
                self._reregistered = now
                if self._toward_rendezvous(prefix) != peer:
                    self._register()
            return
        table = self.routes.get(prefix)
        if u.retraction:
            if table is not None and table.pop(peer, None) is not None:
                self._dirty = True
                self._reselect(prefix, now)
            return
        ball = bool(u.flags & UPDATE_BALL)
        reply = bool(u.flags & UPDATE_REPLY)
        register = bool(u.flags & UPDATE_REGISTER)
        if table is None:
            if ball:
                if self._counts()[0] >= self.params.max_ball_prefixes:
                    self.counters.add("ball_full")
                    return
            else:
                asked = (
                    register or prefix in self.interests or (reply and u.query_id in self.pending)
                )
                if not asked:
                    self.counters.add("updates_unsolicited")
                    return
                if self._counts()[1] >= self.params.max_ondemand_prefixes:
                    self.counters.add("ondemand_full")
                    return
        if not self._authentic(u):
            return
        feasible = self._feasible(prefix, u.router_id, u.seqno, u.metric)
        current = self.selected.get(prefix)
        if not feasible and current is not None and current.peer == peer:
            # RFC 8966 3.5.4: keep the old, loop-free information.
            self.counters.add("updates_unfeasible_selected")
        else:
            if table is None:
                table = self.routes[prefix] = {}
            old = table.get(peer)
            was_ball = old is not None and old.ball
            keep_ball = ball or (was_ball and old is not None and old.router_id == u.router_id)
            long_lived = keep_ball or register
            lifetime = (
                3.5 * self.params.dump_interval if long_lived else self.params.ondemand_lifetime
            )
            table[peer] = Route(
                peer,
                u.seqno,
                u.metric,
                u.router_id,
                u.issued,
                u.signature,
                u.scope if ball else (old.scope if old is not None and keep_ball else 0),
                keep_ball,
                max(now + lifetime, old.expires if old is not None else 0.0),
                bool(u.flags & UPDATE_LANDMARK),
            )
            if old is None or was_ball != keep_ball:
                self._dirty = True
            self._reselect(prefix, now)
        if register:
            if prefix in self.selected:
                self._forward_registration(prefix, came_from=peer)
            else:
                self._ask_newer(peer, u, now)
        want = self._reregister.get(prefix)
        sel = self.selected.get(prefix)
        if want is not None and sel is not None and seqno_newer_or_equal(sel.seqno, want):
            del self._reregister[prefix]
            self._forward_registration(prefix)
        if reply:
            self._on_reply(peer, u, feasible, now)

    def _counts(self) -> tuple[int, int]:
        """(neighbourhood prefixes, on-demand prefixes); recounted only after the set changed."""
        if self._dirty:
            ball = sum(1 for t in self.routes.values() if any(r.ball for r in t.values()))
            self._ball_count, self._ondemand_count = ball, len(self.routes) - ball
            self._dirty = False
        return self._ball_count, self._ondemand_count

    def _ask_newer(self, peer: int, u: Update, now: float) -> None:
        """An unfeasible registration: ask the origin (through ``peer``) for a newer seqno and
        pass the registration on once it arrives."""
        fd = self.fd.get((u.prefix, u.router_id))
        want = ((fd[0] if fd else u.seqno) + 1) & 0xFFFF
        if self._reregister.get(u.prefix) == want or len(self._reregister) >= 1024:
            return
        self._reregister[u.prefix] = want
        qid = self._rng.getrandbits(32)
        self._own_pending(qid, want, now)
        self.counters.add("seqno_queries")
        self._queue(peer, Query(qid, u.prefix, want, QUERY_SEQNO | QUERY_DIRECTED, 64))

    def _on_reply(self, peer: int, u: Update, feasible: bool, now: float) -> None:
        prefix = u.prefix
        if not feasible:
            # Ask for a newer seqno along the answerer's route: the origin bumps, and the
            # answer it sends is feasible at every hop.
            fd = self.fd.get((prefix, u.router_id))
            want = ((fd[0] if fd else u.seqno) + 1) & 0xFFFF
            self.counters.add("seqno_queries")
            self._queue(peer, Query(u.query_id, prefix, want, QUERY_SEQNO | QUERY_DIRECTED, 64))
            return
        self._answer_pending(prefix, u.query_id)

    def _answer_pending(self, prefix: bytes, query_id: int) -> None:
        """Send our route for ``prefix`` back to whoever asked us in query ``query_id``."""
        sel = self.selected.get(prefix)
        waiting = self.pending.get(query_id)
        if sel is None or waiting is None:
            return
        metric = self._metric(sel)
        for entry in waiting:
            if entry.ingress == sel.peer or entry.ingress not in self.neighbours:
                continue
            if entry.want is not None and not seqno_newer_or_equal(sel.seqno, entry.want):
                continue
            if metric < entry.best:
                entry.best = metric
                self._advertise(prefix, entry.ingress, UPDATE_REPLY, query_id)

    def _metric(self, route: Route) -> int:
        nb = self.neighbours.get(route.peer)
        return INFINITY if nb is None else metric_add(route.metric, nb.cost)

    def _reselect(self, prefix: bytes, now: float) -> None:
        table = self.routes.get(prefix, {})
        best: Route | None = None
        best_metric = INFINITY
        for route in table.values():
            m = self._metric(route)
            if m < best_metric and self._feasible(
                prefix, route.router_id, route.seqno, route.metric
            ):
                best, best_metric = route, m
        old = self.selected.get(prefix)
        if best is not None and old is not None and old is not best and table.get(old.peer) is old:
            old_metric = self._metric(old)
            margin = max(self.params.hysteresis_abs, int(old_metric * self.params.hysteresis_rel))
            if (
                old_metric < INFINITY
                and best_metric + margin >= old_metric
                and self._feasible(prefix, old.router_id, old.seqno, old.metric)
            ):
                best, best_metric = old, old_metric
        was_landmark = old is not None and old.landmark
        is_landmark = best is not None and best.landmark
        if was_landmark != is_landmark:
            self._landmarks_changed(now)
        if best is None:
            if old is not None:
                del self.selected[prefix]
                self._retract(prefix, old)
            if not table:
                self._forget_prefix(prefix)
            interest = self.interests.get(prefix)
            if interest is not None and interest.ring < 0 and old is not None:
                self.counters.add("routes_lost")
                self._start_ring(prefix, interest, 0, now)
            return
        self.selected[prefix] = best
        parked = self._parked.pop(prefix, None) if old is None else None
        for qid in parked or ():
            self._answer_pending(prefix, qid)
        moved = old is None or old.peer != best.peer
        last = self._adv_metric.get(prefix)
        changed = (
            moved
            or old is None
            or old.seqno != best.seqno
            or old.router_id != best.router_id
            or last is None
            or abs(best_metric - last) > self.params.hysteresis_abs
        )
        if changed:
            advertised = self.advertised.get(prefix)
            if advertised and best.peer in advertised:
                # Poisoned reverse: our new next hop must not keep a route through us.
                advertised.discard(best.peer)
                self._queue(best.peer, self._retraction(prefix, best))
            if best.ball and best.scope > 0:
                for peer in self.neighbours:
                    if peer != best.peer:
                        self._advertise(prefix, peer, UPDATE_BALL, 0)
            for peer in list(advertised or ()):
                if peer in self.neighbours:
                    self._advertise(prefix, peer, 0, 0)
        interest = self.interests.get(prefix)
        if interest is not None and interest.ring >= 0:
            self._acquired(prefix, interest, now)

    def _forget_prefix(self, prefix: bytes) -> None:
        if self.routes.pop(prefix, None) is not None:
            self._dirty = True
        self.advertised.pop(prefix, None)
        self._adv_metric.pop(prefix, None)
        self._reg_via.pop(prefix, None)
        self._reregister.pop(prefix, None)
        self._parked.pop(prefix, None)

    def _retract(self, prefix: bytes, old: Route) -> None:
        targets = set(self.advertised.pop(prefix, ()))
        if old.ball and old.scope > 0:
            targets.update(self.neighbours)
        for peer in targets:
            if peer in self.neighbours:
                self._queue(peer, self._retraction(prefix, old))
        self._adv_metric.pop(prefix, None)

    def _retraction(self, prefix: bytes, route: Route) -> Update:
        return Update(prefix, route.seqno, INFINITY, 0, 0, 0, route.router_id)

    def _advertise(
        self, prefix: bytes, peer: int, flags: int, query_id: int, *, force: bool = False
    ) -> None:
        """Queue our selected route for ``prefix`` to ``peer``, recording the feasibility
        distance (what makes every advertisement loop-free)."""
        if prefix == self.prefix:
            radius = self.params.landmark_scope if self.landmark else self.params.ball_radius
            scope = radius - 1 if flags & UPDATE_BALL else 0
            if self.landmark:
                flags |= UPDATE_LANDMARK
            self._queue(
                peer,
                Update(
                    prefix,
                    self.seqno,
                    0,
                    scope,
                    flags,
                    query_id,
                    self.router_id,
                    self.issued,
                    self.signature,
                ),
            )
            return
        sel = self.selected.get(prefix)
        if sel is None or (sel.peer == peer and not force):
            return
        metric = self._metric(sel)
        if metric >= INFINITY:
            return
        key = (prefix, sel.router_id)
        fd = self.fd.get(key)
        if fd is None or seqno_newer(sel.seqno, fd[0]) or (sel.seqno == fd[0] and metric < fd[1]):
            self.fd[key] = (sel.seqno, metric)
        self._adv_metric[prefix] = metric
        scope = sel.scope - 1 if flags & UPDATE_BALL else 0
        if sel.landmark:
            flags |= UPDATE_LANDMARK
        if not flags & UPDATE_BALL:
            self.advertised.setdefault(prefix, set()).add(peer)
        self._queue(
            peer,
            Update(
                prefix,
                sel.seqno,
                metric,
                scope,
                flags,
                query_id,
                sel.router_id,
                sel.issued,
                sel.signature,
            ),
        )

    def _dump_to(self, peer: int) -> None:
        self._advertise(self.prefix, peer, UPDATE_BALL, 0)
        for prefix, sel in self.selected.items():
            if sel.ball and sel.scope > 0 and sel.peer != peer:
                self._advertise(prefix, peer, UPDATE_BALL, 0)

    # ------------------------------------------------------------------ queries

    def _on_query(self, peer: int, q: Query, now: float) -> None:
        nb = self.neighbours[peer]
        if not nb.bucket.take(now):
            self.counters.add("queries_rate_limited")
            return
        want = q.seqno if q.flags & QUERY_SEQNO else None
        entries = self.pending.get(q.query_id)
        if entries is not None:
            if any(e.want == want for e in entries) or len(entries) >= 4:
                self.counters.add("queries_duplicate")
                return
        elif len(self.pending) >= self.params.query_cache_max:
            self.counters.add("queries_cache_full")
            return
        else:
            entries = self.pending[q.query_id] = []
        entries.append(Pending(want, peer, at=now))
        self.counters.add("queries_handled")
        prefix = q.prefix
        if prefix == self.prefix:
            if want is not None and seqno_newer(want, self.seqno):
                if not self._bumps.take(now):
                    # Served when the next token arrives (bounded list).
                    self.counters.add("bumps_deferred")
                    if len(self._deferred) < 64:
                        self._deferred.append((q.query_id, peer))
                    if seqno_newer(want, self._bump_want):
                        self._bump_want = want
                    if self._bump_at == INF:
                        self._bump_at = now + 1.0 / self.params.bump_rate
                    return
                self._bump(want)
            entries[-1].best = 0
            self._advertise(prefix, peer, UPDATE_REPLY, q.query_id)
            return
        sel = self.selected.get(prefix)
        if sel is not None:
            if sel.peer == peer:
                return  # our route goes through the asker: nothing loop-free to offer
            fresh = want is None or seqno_newer_or_equal(sel.seqno, want)
            answers = sel.ball or not q.flags & QUERY_DIRECTED or q.flags & QUERY_LOOKUP
            if fresh and answers:
                entries[-1].best = self._metric(sel)
                self._advertise(prefix, peer, UPDATE_REPLY, q.query_id)
            elif q.ttl > 1:
                self._queue(sel.peer, Query(q.query_id, prefix, q.seqno, q.flags, q.ttl - 1))
            return
        if q.flags & QUERY_LOOKUP and q.ttl > 1:
            toward = self._toward_rendezvous(prefix)
            if toward is None and self.rendezvous(prefix) == self.prefix:
                parked = self._parked.setdefault(prefix, [])
                if len(parked) < 8 and len(self._parked) <= 256:
                    self.counters.add("lookups_parked")
                    parked.append(q.query_id)
                return
            if toward is None or toward == peer:
                self.counters.add("lookups_dead_end")
                return
            self._queue(toward, Query(q.query_id, prefix, q.seqno, q.flags, q.ttl - 1))
            return
        if q.flags & QUERY_DIRECTED or q.ttl <= 1:
            return
        forwarded = Query(q.query_id, prefix, q.seqno, q.flags, q.ttl - 1)
        for other in self.neighbours:
            if other != peer:
                self._queue(other, forwarded)

    def _deferred_bump(self, now: float) -> None:
        if not self._bumps.take(now):
            self._bump_at = now + 1.0 / self.params.bump_rate
            return
        self._bump_at = INF
        if seqno_newer(self._bump_want, self.seqno):
            self._bump(self._bump_want)
        for qid, peer in self._deferred:
            if peer in self.neighbours:
                self._advertise(self.prefix, peer, UPDATE_REPLY, qid)
        self._deferred.clear()

    def _bump(self, want: int) -> None:
        self.seqno = want if seqno_newer(want, self.seqno) else (self.seqno + 1) & 0xFFFF
        self.issued = max(self.issued, int(self._wall()))
        self.signature = self._signer.sign(
            announcement_message(self.prefix, self.seqno, self.router_id, self.issued)
        )
        self.counters.add("seqno_bumps")
        for peer in self.neighbours:
            self._advertise(self.prefix, peer, UPDATE_BALL, 0)

    def _steps(self) -> list[tuple[bool, int, float]]:
        """The search plan: (lookup?, ttl, timeout) per step; lookups only if landmarks exist."""
        p = self.params
        steps = [(False, ttl, t) for ttl, t in zip(p.ring_ttls, p.ring_timeouts, strict=True)]
        if self._landmark_list():
            steps = [(True, 64, t) for t in p.lookup_timeouts] + steps
        return steps

    def _start_ring(self, prefix: bytes, interest: Interest, ring: int, now: float) -> None:
        steps = self._steps()
        if ring >= len(steps):
            self.counters.add("queries_unanswered")
            self._actions.append(Unreachable(prefix))
            interest.ring = -1
            interest.deadline = INF
            interest.refresh_at = now + self.params.retry_after
            self._push(interest.refresh_at, prefix)
            return
        lookup, ttl, timeout = steps[ring]
        interest.ring = ring
        interest.deadline = now + timeout
        self._push(interest.deadline, prefix)
        if not self._own_queries.take(now):
            self.counters.add("own_queries_rate_limited")
            return
        interest.query_id = qid = self._rng.getrandbits(32)
        self._own_pending(qid, None, now)
        self.counters.add("queries_sent")
        if lookup:
            toward = self._toward_rendezvous(prefix)
            if toward is not None:
                self._queue(toward, Query(qid, prefix, 0, QUERY_LOOKUP | QUERY_DIRECTED, ttl))
            if ring != 0:
                return
            qid ^= 1
            self._own_pending(qid, None, now)
            ttl = self.params.local_ttl
        query = Query(qid, prefix, 0, 0, ttl)
        for peer in self.neighbours:
            self._queue(peer, query)

    # ------------------------------------------------------------------ landmarks

    def _landmark_list(self) -> list[bytes]:
        if self._landmarks is None:
            found = [p for p, r in self.selected.items() if r.landmark]
            if self.landmark:
                found.append(self.prefix)
            self._landmarks = sorted(found)
        return self._landmarks

    def _landmarks_changed(self, now: float) -> None:
        self._landmarks = None
        self._rendezvous.clear()
        # Debounced: re-register once the set has been stable for register_delay.
        self._register_at = now + self.params.register_delay

    def rendezvous(self, prefix: bytes) -> bytes | None:
        """The landmark responsible for ``prefix``: highest hash(prefix | landmark) wins."""
        if prefix in self._rendezvous:
            return self._rendezvous[prefix]
        best: bytes | None = None
        best_score = b""
        for lm in self._landmark_list():
            score = hashlib.blake2b(prefix + lm, digest_size=8).digest()
            if score > best_score:
                best, best_score = lm, score
        if len(self._rendezvous) >= 4096:
            self._rendezvous.clear()
        self._rendezvous[prefix] = best
        return best

    def _toward_rendezvous(self, prefix: bytes) -> int | None:
        lm = self.rendezvous(prefix)
        if lm is None or lm == self.prefix:
            return None
        route = self.selected.get(lm)
        return None if route is None else route.peer

    def _register(self) -> None:
        toward = self._toward_rendezvous(self.prefix)
        if toward is not None:
            self.counters.add("registrations_sent")
            self._reg_via[self.prefix] = toward
            self._advertise(self.prefix, toward, UPDATE_REGISTER, 0)

    def _forward_registration(self, prefix: bytes, came_from: int | None = None) -> None:
        """Pass a registration on along our route to its landmark. That hop may be our next hop
        for the prefix itself (after a failure the way to the landmark can lead back): it is
        sent anyway, since it only asks the receiver to pass on its own route; never back to
        where it came from, so registrations only ever move along the landmark's route tree."""
        toward = self._toward_rendezvous(prefix)
        if toward is not None and toward != came_from and prefix in self.selected:
            self._reg_via[prefix] = toward
            self._advertise(prefix, toward, UPDATE_REGISTER, 0, force=True)

    def _acquired(self, prefix: bytes, interest: Interest, now: float) -> None:
        interest.ring = -1
        interest.deadline = INF
        interest.refresh_at = now + self.params.ondemand_lifetime - self.params.refresh_before
        self._push(interest.refresh_at, prefix)
        sel = self.selected[prefix]
        self._actions.append(Acquired(prefix, self._metric(sel)))

    def _interest_timer(self, prefix: bytes, now: float) -> None:
        interest = self.interests.get(prefix)
        if interest is None:
            return
        p = self.params
        if interest.ring >= 0 and now >= interest.deadline:
            if prefix in self.selected:
                self._acquired(prefix, interest, now)
            else:
                self._start_ring(prefix, interest, interest.ring + 1, now)
        elif interest.ring < 0 and now >= interest.refresh_at:
            sel = self.selected.get(prefix)
            if sel is None:
                self._start_ring(prefix, interest, 0, now)
                return
            # Re-confirm the route along its path; the answer refreshes every hop.
            qid = self._rng.getrandbits(32)
            self._own_pending(qid, None, now)
            self._queue(sel.peer, Query(qid, prefix, 0, QUERY_DIRECTED, 64))
            self.counters.add("refreshes_sent")
            interest.refresh_at = now + p.ondemand_lifetime - p.refresh_before
            self._push(interest.refresh_at, prefix)

    def _own_pending(self, qid: int, want: int | None, now: float) -> None:
        """Record a query of our own; at the cap the oldest entry makes room (bounded)."""
        while len(self.pending) >= self.params.query_cache_max:
            self.pending.popitem(last=False)
        self.pending[qid] = [Pending(want, -1, at=now)]

    def _push(self, at: float, prefix: bytes) -> None:
        self._heap_seq += 1
        heapq.heappush(self._heap, (at, self._heap_seq, prefix))

    # ------------------------------------------------------------------ housekeeping

    def _drop_neighbour(self, peer: int, now: float) -> None:
        if self.neighbours.pop(peer, None) is None:
            return
        self._out.pop(peer, None)
        affected = [prefix for prefix, table in self.routes.items() if peer in table]
        for prefix in affected:
            self.routes[prefix].pop(peer, None)
        self._dirty = self._dirty or bool(affected)
        for advertised in self.advertised.values():
            advertised.discard(peer)
        for prefix in affected:
            self._reselect(prefix, now)
        # Registrations that went through the lost neighbour go again along the new route to
        # their landmark, so the landmark does not wait for the member's next registration.
        for prefix in [pfx for pfx, via in self._reg_via.items() if via == peer]:
            del self._reg_via[prefix]
            self.counters.add("registrations_repaired")
            if prefix == self.prefix:
                self._register()
            else:
                self._forward_registration(prefix)

    def _sweep(self, now: float) -> None:
        expired = []
        for prefix, table in self.routes.items():
            dead = [peer for peer, r in table.items() if r.expires <= now]
            for peer in dead:
                del table[peer]
            if dead:
                expired.append(prefix)
                self._dirty = True
        for prefix in expired:
            self._reselect(prefix, now)
        horizon = now - self.params.query_cache_s
        while self.pending:
            qid, entries = next(iter(self.pending.items()))
            if entries[0].at > horizon:
                break
            del self.pending[qid]
        if self._parked and not self.pending:
            self._parked.clear()
        elif self._parked:
            for prefix in list(self._parked):
                live = [qid for qid in self._parked[prefix] if qid in self.pending]
                if live:
                    self._parked[prefix] = live
                else:
                    del self._parked[prefix]

    def _queue(self, peer: int, tlv: Tlv) -> None:
        self._out.setdefault(peer, []).append(tlv)

    def _flush(self) -> list[Action]:
        actions = self._actions
        self._actions = []
        limit = self.params.max_payload
        for peer, tlvs in self._out.items():
            chunk = b""
            for tlv in tlvs:
                data = encode(tlv)
                if chunk and len(chunk) + len(data) > limit:
                    actions.append(Send(peer, chunk))
                    chunk = b""
                chunk += data
            if chunk:
                actions.append(Send(peer, chunk))
        self._out.clear()
        return actions
