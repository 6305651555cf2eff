"""The sans-IO Babel-style router (RFC 8966, as Mycelium adapts it, with signed announcements).

Inputs are control payloads, neighbour up/down events and the current time; outputs are
:class:`SendControl` / :class:`NeighbourDead` actions. Nothing here does I/O; the only clock read
is the injected ``wall_clock``, for the signed freshness of announcements.

Work per input is proportional to what the input touches: an update reselects one prefix, and
timers sit in a lazy heap, one route-expiry timer per prefix. A link-cost change or a lost
neighbour scans the table once: nearly every neighbour announces nearly every prefix, so an index
per neighbour would cost as much memory as the table for little saved work.
Changes made while handling one input are collected and flushed at the end as batched payloads.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable, Iterable
from itertools import islice
from typing import assert_never

from hyphal.crypto.signing import Signer, Verifier, XEdDSAVerifier
from hyphal.identity import prefix64_for_public_key
from hyphal.routing.auth import (
    BAD_DELEGATION,
    EXPIRED,
    FUTURE,
    OK,
    AnnouncementChecker,
    AnnouncementPool,
    in_overlay,
)
from hyphal.routing.bucket import TokenBucket
from hyphal.routing.metric import INFINITY, metric_add, seqno_newer, seqno_newer_or_equal
from hyphal.routing.neighbour import Neighbour
from hyphal.routing.origin import Origin
from hyphal.routing.params import RoutingParams
from hyphal.routing.requests import SeqnoRequests
from hyphal.routing.source import SourceTable
from hyphal.routing.table import PrefixEntry, Route
from hyphal.routing.types import (
    Action,
    NeighbourDead,
    NeighbourInfo,
    RouteChange,
    RouteInfo,
    SendControl,
)
from hyphal.wire.control import (
    IHU,
    SUB_TLV_DELEGATION,
    Delegation,
    Hello,
    SeqnoRequest,
    Update,
    decode_delegation,
    decode_payload,
    encode_relayed_update,
    encode_retraction,
    encode_tlv,
)
from hyphal.wire.errors import DecodeError

_ROUTE_EXPIRY = 0
_HOLD_EXPIRY = 1
_SEQNO_RETRY = 2
_DEMOTION_EXPIRY = 3
_LOST_REPORT = 4
# A route lost while unfeasible alternatives remain is reported lost only if no route is found
# within this long (a seqno request usually makes one feasible within a round trip): a failover
# through a seqno request is then one "failover" change, not "lost" and "reachable".
_LOST_REPORT_GRACE = 2.0
_EVICTION_SCAN = 16  # entries of the heaviest neighbour looked at for one eviction
_MIN_ROUTE_INTERVAL = 1.0  # a route lives at least route_expiry_factor seconds
# A demoted route still in use is advertised with the largest finite metric: downstream nodes
# with any alternative take it, and our feasibility distance for the next seqno stays high
# enough that an honest route at that seqno is feasible here.
_DEMOTED_METRIC = INFINITY - 1

COUNTERS = (  # every key of Router.counters; docs/routing.md lists the same names
    "control_received",
    "control_from_unknown_peer",
    "tlvs_over_budget",
    "replies_over_budget",
    "hellos_sent",
    "hellos_received",
    "ihus_received",
    "rtt_samples",
    "rtt_samples_discarded",
    "updates_sent",
    "updates_coalesced",
    "updates_received",
    "updates_accepted",
    "updates_unfeasible",
    "updates_own_prefix",
    "updates_unknown_mandatory",
    "updates_rejected_prefix",
    "updates_rejected_key",
    "updates_rejected_signature",
    "updates_rejected_expired",
    "updates_rejected_future",
    "updates_rejected_wrapped",
    "updates_rejected_delegation",
    "updates_rejected_table_full",
    "updates_refused_client",
    "routes_evicted",
    "retractions_sent",
    "retractions_received",
    "seqno_requests_sent",
    "seqno_requests_received",
    "seqno_requests_forwarded",
    "seqno_requests_deduped",
    "seqno_requests_over_budget",
    "seqno_answers_over_budget",
    "seqno_request_retries",
    "seqno_bumps",
    "neighbours_up",
    "neighbours_down",
    "neighbours_dead",
    "route_switches",
    "routes_demoted",
    "routes_lost",
    "routes_expired",
    "signature_verifications",
    "full_dumps",
)
_REJECT_COUNTER = {
    "prefix": "updates_rejected_prefix",
    "key": "updates_rejected_key",
    "signature": "updates_rejected_signature",
    EXPIRED: "updates_rejected_expired",
    FUTURE: "updates_rejected_future",
    BAD_DELEGATION: "updates_rejected_delegation",
}


def _centiseconds(seconds: float) -> int:
    return max(0, min(0xFFFF, round(seconds * 100)))


class Router:
    """Babel-style distance-vector router for overlay /64s. See ``docs/routing.md``."""

    def __init__(
        self,
        public_key: bytes,
        signer: Signer,
        params: RoutingParams,
        now: float,
        rng: random.Random,
        verifier: Verifier | None = None,
        router_id_suffix: bytes | None = None,
        *,
        announcement_pool: AnnouncementPool | None = None,
        wall_clock: Callable[[], float] = time.time,
        report_routes: bool = False,
        client: bool = False,
    ) -> None:
        if len(public_key) != 32:
            raise ValueError("a public key has 32 bytes")
        suffix = rng.randbytes(8) if router_id_suffix is None else router_id_suffix
        if len(suffix) != 8:
            raise ValueError("router_id_suffix must be 8 bytes")
        self.params = params
        self.public_key = public_key
        # A client router (``--role client``) originates its own prefixes and sends nothing it
        # learned: no updates or retractions for others' prefixes, no answers or forwarding of
        # others' seqno requests. It still learns routes and selects among its uplinks.
        self.client = client
        self.router_id = public_key + suffix
        self.own_prefix64 = prefix64_for_public_key(public_key)
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._rng = rng
        self._wall_clock = wall_clock
        # Emit RouteChange actions when a selected next hop changes (the daemon logs them; the
        # simulator's thousands of routers leave them off).
        self.report_routes = report_routes
        self._checker = AnnouncementChecker(
            verifier or XEdDSAVerifier(),
            params.signature_cache_size,
            params.announcement_lifetime,
            params.max_clock_skew,
            announcement_pool,
        )
        self._update_interval_cs = _centiseconds(params.update_interval)
        self._hello_interval_cs = _centiseconds(params.hello_interval)
        # Own announcement.
        self._origin = Origin(
            self.own_prefix64,
            self.router_id,
            signer,
            params,
            self._update_interval_cs,
            now,
            wall_clock,
        )
        self._own_pending: dict[bytes, None] = {}  # originated prefixes to flood
        # State.
        self._neighbours: dict[int, Neighbour] = {}
        self._table: dict[bytes, PrefixEntry] = {}
        self._route_count = 0
        self._fib: dict[bytes, int] = {}
        # The selected route's key per prefix: sealing a packet looks it up, so it is kept
        # rather than sliced from the router id for every packet.
        self._fib_key: dict[bytes, bytes] = {}
        self._sources = SourceTable(2 * params.max_routes, params.max_sources_per_prefix)
        # (when, kind, prefix): route expiries one per prefix (PrefixEntry.timer), and the rest
        self._heap: list[tuple[float, int, bytes]] = []
        self._last_expires = 0.0  # the last route expiry set (see _on_update)
        self._next_periodic = now + self._jittered(params.update_interval, params.update_jitter)
        self._next_sweep = now + params.source_sweep_interval
        self.requests = SeqnoRequests(params)
        # The last seqno request encoded: ((prefix, seqno, router id), TLV).
        self._last_request: tuple[tuple[bytes, int, bytes], bytes] = ((b"", -1, b""), b"")
        self._tlv_budget: dict[int, TokenBucket] = {}
        self._reply_budget: dict[int, TokenBucket] = {}
        self._answer_budget: dict[int, TokenBucket] = {}
        # Output collected during one call.
        self._pending: dict[bytes, None] = {}
        # Pending prefixes that skip the coalescing window: a newer seqno, or a route found
        # again after a loss. Both end a starvation somewhere, so every hop of their flood
        # would otherwise add up to update_coalesce to a failover (see _flush_triggered).
        self._urgent: dict[bytes, None] = {}
        # Urgent updates waiting for the pace (urgent_update_pace after the last urgent flush).
        self._urgent_held: dict[bytes, None] = {}
        self._urgent_due = float("inf")
        self._urgent_last = float("-inf")
        # Triggered updates held back to coalesce (see _flush) and when they go out.
        self._held: dict[bytes, None] = {}
        self._held_due = float("inf")
        # Never-advertised prefixes held for first_update_hold (prefix -> when), the earliest.
        self._first_held: dict[bytes, float] = {}
        self._first_due = float("inf")
        self._out: dict[int, list[bytes]] = {}
        self._dead: list[Action] = []  # NeighbourDead and RouteChange actions, flushed first

    # ------------------------------------------------------------------ public API: queries

    @property
    def seqno(self) -> int:
        """Our own /64's announcement's current seqno."""
        return self._origin.own.seqno

    def originated(self) -> list[bytes]:
        """Every prefix we originate, our own /64 first."""
        return list(self._origin.announcements)

    def next_hop(self, prefix64: bytes) -> int | None:
        return self._fib.get(prefix64)

    def route_public_key(self, prefix64: bytes) -> bytes | None:
        if prefix64 in self._origin.announcements:
            return self.public_key
        return self._fib_key.get(prefix64)

    def selected_routes(self) -> list[RouteInfo]:
        return [
            self._info(e.prefix, e.selected, True)
            for e in self._table.values()
            if e.selected is not None
        ]

    def selected_route(self, prefix64: bytes) -> RouteInfo | None:
        entry = self._table.get(prefix64)
        if entry is None or entry.selected is None:
            return None
        return self._info(prefix64, entry.selected, True)

    def fallback_routes(self) -> list[RouteInfo]:
        return [
            self._info(e.prefix, r, False)
            for e in self._table.values()
            for r in e.routes
            if r is not e.selected
        ]

    def neighbours(self) -> list[NeighbourInfo]:
        return [
            NeighbourInfo(n.peer, n.rtt, n.cost, n.last_heard, n.usable)
            for n in self._neighbours.values()
        ]

    def route_count(self) -> int:
        """Number of prefixes in the table (selected or not)."""
        return len(self._table)

    def _info(self, prefix: bytes, route: Route, selected: bool) -> RouteInfo:
        cost = self._neighbours[route.peer].cost
        return RouteInfo(
            prefix,
            route.peer,
            metric_add(route.metric, cost),
            route.seqno,
            route.router_id,
            selected,
            route.metric,
        )

    # ------------------------------------------------------------------ public API: events

    def originate(self, prefix64: bytes, delegation: Delegation, now: float) -> list[Action]:
        """Announce ``prefix64`` (not our own /64) under ``delegation`` from its owner.

        Raises ValueError if the delegation does not authorise our key for it right now (the
        same check every receiver makes). Originating a prefix again replaces its delegation.
        """
        if prefix64 == self.own_prefix64:
            raise ValueError("our own /64 is always originated")
        wall = self._wall_clock()
        if not in_overlay(prefix64) or not self._checker.delegation_holds(
            prefix64, self.public_key, delegation, wall
        ):
            raise ValueError("the delegation does not authorise our key for this prefix")
        entry = self._table.get(prefix64)
        if entry is not None:  # we are its origin now: forget what others told us
            self._route_count -= len(entry.routes)
            self._fib.pop(prefix64, None)
            self._fib_key.pop(prefix64, None)
            self._pending.pop(prefix64, None)
            self._forget(prefix64)
        self._origin.add(prefix64, delegation, now)
        self._own_pending[prefix64] = None
        return self._flush(now)

    def withdraw(self, prefix64: bytes, now: float) -> list[Action]:
        """Stop originating ``prefix64`` and send every usable neighbour a retraction."""
        if prefix64 == self.own_prefix64:
            raise ValueError("our own /64 cannot be withdrawn")
        announcement = self._origin.announcements.pop(prefix64, None)
        if announcement is None:
            return []
        self._own_pending.pop(prefix64, None)
        tlv = self._retraction_tlv(prefix64, announcement.seqno, self.router_id)
        for nb in self._neighbours.values():
            if nb.usable:
                self._queue(nb.peer, tlv)
                self.counters["retractions_sent"] += 1
        return self._flush(now)

    def demote(self, prefix64: bytes, peer: int, until: float, now: float) -> list[Action]:
        """Avoid next hop ``peer`` for ``prefix64`` until ``until`` while another feasible route
        exists (the route audit found its path far worse than advertised, or black-holed).

        If the other routes are all unfeasible (the usual case: the liar's low metric set our
        feasibility distance), the demoted route stays and a seqno request goes out, whose answer
        makes them feasible."""
        entry = self._table.get(prefix64)
        if entry is None or entry.route(peer) is None or until <= now:
            return []
        if entry.demoted is None:
            entry.demoted = {}
        entry.demoted[peer] = until
        self.counters["routes_demoted"] += 1
        self._push(until, _DEMOTION_EXPIRY, prefix64)
        self._reselect(entry, now)
        selected = entry.selected
        if selected is not None and selected.peer == peer and len(entry.routes) > 1:
            self._request_starved(entry, now)
        return self._flush(now)

    def neighbour_up(self, peer: int, now: float, client_key: bytes | None = None) -> list[Action]:
        """A link to ``peer`` is up. ``client_key``: the neighbour's public key if it declared the
        client role; then only updates for prefixes it originates (router id of this key: its
        own /64 or a prefix delegated to it) are accepted from it, so nothing else is ever routed
        through it (``updates_refused_client`` counts the rest)."""
        if client_key is not None and len(client_key) != 32:
            raise ValueError("a client key has 32 bytes")
        if peer not in self._neighbours:
            self._neighbours[peer] = nb = Neighbour(peer, now, client_key)
            params = self.params
            self._tlv_budget[peer] = TokenBucket(params.tlv_rate, params.tlv_burst, now)
            self._reply_budget[peer] = TokenBucket(params.reply_rate, params.reply_burst, now)
            self._answer_budget[peer] = TokenBucket(params.answer_rate, params.answer_burst, now)
            self.counters["neighbours_up"] += 1
            self._send_hello(nb, now)
        return self._flush(now)

    def neighbour_down(self, peer: int, now: float) -> list[Action]:
        self._drop_neighbour(peer, now)
        return self._flush(now)

    def handle_control(self, peer: int, payload: bytes, now: float) -> list[Action]:
        tlvs = decode_payload(payload)
        nb = self._neighbours.get(peer)
        if nb is None:
            self.counters["control_from_unknown_peer"] += 1
            return []
        self.counters["control_received"] += 1
        nb.last_heard = now
        budget = self._tlv_budget[peer]
        for index, tlv in enumerate(tlvs):
            if not budget.take(now):
                self.counters["tlvs_over_budget"] += len(tlvs) - index
                break
            match tlv:
                case Update():
                    self._on_update(nb, tlv, now)
                case Hello():
                    self.counters["hellos_received"] += 1
                    if self._may_reply(peer, now):
                        self._queue(
                            peer,
                            encode_tlv(IHU(tlv.seqno, self._hello_interval_cs, tlv.timestamp)),
                        )
                case IHU():
                    self._on_ihu(nb, tlv, now)
                case SeqnoRequest():
                    self._on_seqno_request(nb, tlv, now)
                case _:
                    assert_never(tlv)
        return self._flush(now)

    def on_timer(self, now: float) -> list[Action]:
        params = self.params
        for nb in list(self._neighbours.values()):
            if now >= nb.last_heard + params.dead_interval:  # same expression as next_deadline
                self.counters["neighbours_dead"] += 1
                self._dead.append(NeighbourDead(nb.peer))
                self._drop_neighbour(nb.peer, now)
            elif now >= nb.next_hello:
                self._send_hello(nb, now)
        for announcement in self._origin.on_timer(now):
            self._bumped(announcement.prefix64)
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, kind, prefix = heapq.heappop(heap)
            self._on_heap_item(kind, prefix, now)
        if now >= self._next_periodic:
            self._next_periodic = now + self._jittered(params.update_interval, params.update_jitter)
            self._dump(list(self._neighbours.values()), now)
        if now >= self._next_sweep:
            self._next_sweep = now + params.source_sweep_interval
            self._sources.sweep(now)
        return self._flush(now)

    def next_deadline(self) -> float:
        dead = self.params.dead_interval
        deadline = self._next_periodic
        if self._next_sweep < deadline:
            deadline = self._next_sweep
        for nb in self._neighbours.values():
            if nb.next_hello < deadline:
                deadline = nb.next_hello
            if nb.last_heard + dead < deadline:
                deadline = nb.last_heard + dead
        if self._heap and self._heap[0][0] < deadline:
            deadline = self._heap[0][0]
        if self._held_due < deadline:
            deadline = self._held_due
        if self._first_due < deadline:
            deadline = self._first_due
        if self._urgent_due < deadline:
            deadline = self._urgent_due
        return min(deadline, self._origin.next_deadline())

    # ------------------------------------------------------------------ neighbours

    def _may_reply(self, peer: int, now: float) -> bool:
        if self._reply_budget[peer].take(now):
            return True
        self.counters["replies_over_budget"] += 1
        return False

    def _jittered(self, interval: float, jitter: float) -> float:
        return interval * (1.0 - jitter * self._rng.random())

    def _send_hello(self, nb: Neighbour, now: float) -> None:
        nb.hello_seqno = (nb.hello_seqno + 1) & 0xFFFF
        timestamp = round(now * 1_000_000) & 0xFFFFFFFF
        nb.sent_hellos[nb.hello_seqno] = timestamp
        if len(nb.sent_hellos) > 16:
            del nb.sent_hellos[next(iter(nb.sent_hellos))]
        self._queue(nb.peer, encode_tlv(Hello(nb.hello_seqno, self._hello_interval_cs, timestamp)))
        self.counters["hellos_sent"] += 1
        nb.next_hello = now + self._jittered(self.params.hello_interval, self.params.hello_jitter)

    def _on_ihu(self, nb: Neighbour, ihu: IHU, now: float) -> None:
        self.counters["ihus_received"] += 1
        # Only an echo of a hello we really sent counts, so a neighbour cannot invent a low RTT.
        if nb.sent_hellos.pop(ihu.seqno, None) != ihu.timestamp:
            self.counters["rtt_samples_discarded"] += 1
            return
        sample = ((round(now * 1_000_000) - ihu.timestamp) & 0xFFFFFFFF) / 1_000_000
        if sample > self.params.max_rtt_sample:
            self.counters["rtt_samples_discarded"] += 1
            return
        self.counters["rtt_samples"] += 1
        was_usable = nb.usable
        if nb.rtt_sample(sample, self.params):
            # At most once per hello we sent it. The table is scanned, not a per-neighbour index:
            # nearly every neighbour announces nearly every prefix, so an index would repeat the
            # table once per neighbour (docs/scaling.md).
            peer = nb.peer
            for entry in list(self._table.values()):
                if entry.route(peer) is not None:
                    self._reselect(entry, now)
        if not was_usable:
            self._dump([nb], now)

    def _drop_neighbour(self, peer: int, now: float) -> None:
        nb = self._neighbours.pop(peer, None)
        if nb is None:
            return
        self.counters["neighbours_down"] += 1
        self._out.pop(peer, None)
        for entry in list(self._table.values()):
            if entry.pop(peer) is not None:
                self._route_count -= 1
                self._reselect(entry, now)
        self._reforward(peer, now)
        self.requests.forget_peer(peer)
        del self._tlv_budget[peer], self._reply_budget[peer], self._answer_budget[peer]

    # ------------------------------------------------------------------ updates

    def _on_update(self, nb: Neighbour, u: Update, now: float) -> None:
        self.counters["updates_received"] += 1
        delegation: Delegation | None = None
        for sub in u.sub_tlvs:
            if sub.kind == SUB_TLV_DELEGATION and delegation is None and not u.is_retraction:
                try:
                    delegation = decode_delegation(sub.body)
                except DecodeError:
                    self.counters["updates_rejected_delegation"] += 1
                    return
            elif sub.mandatory:
                self.counters["updates_unknown_mandatory"] += 1
                return
        prefix = u.prefix64
        if prefix in self._origin.announcements:
            self.counters["updates_own_prefix"] += 1
            return
        if not in_overlay(prefix):
            self.counters["updates_rejected_prefix"] += 1
            return
        entry = self._table.get(prefix)
        if entry is not None:
            prefix = entry.prefix  # one bytes object per prefix, shared by its announcements
        peer = nb.peer
        if u.is_retraction:
            self.counters["retractions_received"] += 1
            if entry is None:
                return
            route = entry.route(peer)
            if route is None or route.metric >= INFINITY:
                return
            route.metric = INFINITY
            route.expires = min(route.expires, now + self.params.retraction_hold)
            self._arm(entry, route.expires)
            self._reselect(entry, now)
            return
        if nb.client_key is not None and u.router_id[:32] != nb.client_key:
            # A client relays nothing: a route it did not originate would make it a transit hop.
            self.counters["updates_refused_client"] += 1
            return
        checker = self._checker
        before = checker.verifications
        wall = self._wall_clock()
        carried = (
            None if entry is None else entry.carried(u.router_id, u.seqno, u.issued, u.signature)
        )
        verdict, announcement = checker.check(
            carried or (u.router_id, u.seqno, u.issued, u.signature, prefix),
            wall,
            delegation,
            verified=carried is not None,
        )
        self.counters["signature_verifications"] += checker.verifications - before
        if verdict != OK:
            self.counters[_REJECT_COUNTER[verdict]] += 1
            return
        if self._wrapped(entry, nb.peer, u):
            self.counters["updates_rejected_wrapped"] += 1
            return
        if entry is None:
            prefix = announcement[4]  # the pooled bytes, where a pool shares them
            if len(self._table) >= self.params.max_routes and not self._evict_for(nb, now):
                self.counters["updates_rejected_table_full"] += 1
                return
            entry = self._table[prefix] = PrefixEntry(prefix, peer)
            nb.created[prefix] = None
        feasible = self._sources.feasible(prefix, u.router_id, u.seqno, u.metric)
        route = entry.route(peer)
        if (
            not feasible
            and route is not None
            and route is entry.selected
            and route.router_id == u.router_id
        ):
            # RFC 8966 3.5.4: keep the installed route as it was (still loop-free) and ask the
            # origin for a new seqno that will make the newer information feasible.
            self.counters["updates_unfeasible"] += 1
            self._request_seqno(peer, prefix, u.router_id, now)
            return
        self.counters["updates_accepted"] += 1
        interval = max(
            _MIN_ROUTE_INTERVAL, min(u.interval / 100, self.params.max_advertised_interval)
        )
        lifetime = min(
            self.params.route_expiry_factor * interval, checker.expires_in(u.issued, wall)
        )
        if delegation is not None:
            lifetime = min(lifetime, checker.delegation_expires_in(delegation, wall))
        expires = now + lifetime
        if expires == self._last_expires:
            expires = self._last_expires  # one float for a whole dump's routes, not one each
        else:
            self._last_expires = expires
        unchanged = False
        if carried is None:
            checker.carried(announcement)
        if route is None:
            route = Route(peer, announcement, u.metric, expires, delegation)
            entry.routes.append(route)
            self._route_count += 1
        else:
            unchanged = route.announcement is announcement and route.metric == u.metric
            route.announcement = announcement
            route.metric = u.metric
            route.delegation = delegation
            route.expires = expires
        self._arm(entry, expires)
        if not feasible:
            self.counters["updates_unfeasible"] += 1
            if entry.selected is None:
                self._request_seqno(peer, prefix, u.router_id, now)
        if not self._selection_stands(entry, route, unchanged, feasible, nb):
            self._reselect(entry, now)

    def _selection_stands(
        self, entry: PrefixEntry, route: Route, unchanged: bool, feasible: bool, nb: Neighbour
    ) -> bool:
        """True if ``route``'s update cannot change ``entry``'s selection, so the full rescan in
        _reselect may be skipped: the selected route repeated as it was, or another route that
        is unfeasible or does not beat the selected one by the hysteresis margin. Every other
        input to selection (link costs, demotions, expiries) reselects by itself."""
        selected = entry.selected
        if selected is None or entry.demoted is not None:
            return False
        if route is selected:
            return unchanged
        if not feasible or route.metric >= INFINITY:
            return True
        old = metric_add(selected.metric, self._neighbours[selected.peer].cost)
        if old >= INFINITY:
            return False
        params = self.params
        margin = max(params.hysteresis_abs, params.hysteresis_rel * old)
        return metric_add(route.metric, nb.cost) + margin >= old

    def _wrapped(self, entry: PrefixEntry | None, peer: int, u: Update) -> bool:
        """True if ``u``'s seqno is ambiguous (2^15 away) or newer than one recorded for its
        router id (our feasibility distance, this neighbour's route) yet signed earlier: a
        replay whose seqno compares newer only because the origin's seqno wrapped since."""
        recorded = []
        source = self._sources.get(u.prefix64, u.router_id)
        if source is not None:
            recorded.append((source.seqno, source.issued))
        route = entry.route(peer) if entry is not None else None
        if route is not None and route.router_id == u.router_id and route.metric < INFINITY:
            recorded.append((route.seqno, route.issued))
        for seqno, issued in recorded:
            if (u.seqno - seqno) & 0xFFFF == 0x8000:
                return True
            if u.issued < issued and seqno_newer(u.seqno, seqno):
                return True
        return False

    def _forget(self, prefix: bytes) -> None:
        entry = self._table.pop(prefix)
        if entry.lost_reason is not None:
            self._report_lost(entry)
        owner = self._neighbours.get(entry.owner)
        if owner is not None:
            owner.created.pop(prefix, None)

    def _evict_for(self, nb: Neighbour, now: float) -> bool:
        """Table full: make room for ``nb`` by dropping a prefix of the neighbour holding most.

        Only a neighbour holding more than ``nb`` (plus one) loses an entry, and only one that
        no other neighbour announces, newest first: a flooding neighbour evicts its own routes.
        """
        heaviest = max(self._neighbours.values(), key=lambda n: len(n.created))
        if len(heaviest.created) <= len(nb.created) + 1:
            return False
        for prefix in islice(reversed(heaviest.created), _EVICTION_SCAN):
            entry = self._table.get(prefix)
            if entry is not None and all(r.peer == heaviest.peer for r in entry.routes):
                break
        else:
            return False
        self.counters["routes_evicted"] += 1
        if entry.pop(heaviest.peer) is not None:
            self._route_count -= 1
        self._reselect(entry, now)  # withdraws it from the FIB
        if prefix in self._table:
            self._forget(prefix)
        return True

    def _reselect(self, entry: PrefixEntry, now: float) -> None:
        """Pick the best feasible route (with hysteresis); update the FIB and note triggers."""
        params = self.params
        prefix = entry.prefix
        old = entry.selected
        best: Route | None = None
        best_metric = INFINITY
        old_metric = INFINITY
        neighbours = self._neighbours
        feasible = self._sources.feasible
        demoted = entry.demoted
        fallback: Route | None = None  # best demoted route, used only if nothing else is
        fallback_metric = INFINITY
        for route in entry.routes:
            if route.metric >= INFINITY:
                continue
            total = metric_add(route.metric, neighbours[route.peer].cost)
            if total >= INFINITY or not feasible(
                prefix, route.router_id, route.seqno, route.metric
            ):
                continue
            if demoted is not None and demoted.get(route.peer, 0.0) > now:
                if total < fallback_metric:
                    fallback, fallback_metric = route, total
                continue
            if route is old:
                old_metric = total
            if total < best_metric:
                best, best_metric = route, total
        if best is None and fallback is not None:
            best, best_metric = fallback, _DEMOTED_METRIC
            if fallback is old:
                old_metric = _DEMOTED_METRIC
        if (
            old is not None
            and old_metric < INFINITY
            and best is not old
            and best_metric + max(params.hysteresis_abs, params.hysteresis_rel * old_metric)
            >= old_metric
        ):
            best, best_metric = old, old_metric
        entry.selected = best
        if self.report_routes:
            self._report(entry, old, best, old_metric, best_metric, now)
        if best is None:
            if old is not None:
                self.counters["routes_lost"] += 1
                self._fib.pop(prefix, None)
                self._fib_key.pop(prefix, None)
                entry.last_router_id = old.router_id
                entry.last_seqno = old.seqno
                entry.hold_until = now + params.retraction_hold
                self._push(entry.hold_until, _HOLD_EXPIRY, prefix)
                if entry.advertised_metric < INFINITY:
                    self._pending[prefix] = None
                self._request_starved(entry, now)
                if entry.routes and self.requests.arm_retries(prefix):
                    self._push(now + self.params.seqno_request_resend, _SEQNO_RETRY, prefix)
            elif not entry.routes and entry.hold_until <= now:
                self._forget(prefix)
            return
        if old is not None and old is not best:
            self.counters["route_switches"] += 1
        self._fib[prefix] = best.peer
        self._fib_key[prefix] = best.router_id[:32]
        advertised = entry.advertised_metric
        if (
            best.router_id != entry.last_router_id
            or best.seqno != entry.last_seqno
            or best.peer != entry.advertised_peer
            or advertised >= INFINITY
            or abs(best_metric - advertised)
            > max(params.significant_change_abs, params.significant_change_rel * advertised)
        ):
            self._pending[prefix] = None
            if entry.last_router_id and (old is None or best.seqno != entry.last_seqno):
                self._urgent[prefix] = None
        entry.last_router_id = best.router_id
        entry.last_seqno = best.seqno

    def _report(
        self,
        entry: PrefixEntry,
        old: Route | None,
        best: Route | None,
        old_metric: int,
        best_metric: int,
        now: float,
    ) -> None:
        """Queue a RouteChange when the selected next hop changed (called by _reselect)."""
        prefix = entry.prefix
        if best is None:
            if old is None:
                return
            entry.lost_peer = old.peer
            reason = self._why_gone(entry, old, now, "no usable route is left")
            if any(r.metric < INFINITY for r in entry.routes):
                # unfeasible ones: a seqno request may make one usable at once
                entry.lost_reason = reason
                self._push(now + _LOST_REPORT_GRACE, _LOST_REPORT, prefix)
                return
            change = RouteChange(
                "lost", prefix, old.router_id[:32], old.peer, None, INFINITY, reason
            )
        elif old is None:
            lost, entry.lost_peer = entry.lost_peer, None
            pending, entry.lost_reason = entry.lost_reason, None
            if lost is not None and lost != best.peer and (pending or entry.hold_until > now):
                change = RouteChange(
                    "failover",
                    prefix,
                    best.router_id[:32],
                    lost,
                    best.peer,
                    best_metric,
                    f"{pending}; a seqno request made another route usable"
                    if pending
                    else "the route through the old next hop was lost; found another",
                )
            elif pending is not None and lost == best.peer:
                return  # back through the same next hop before the loss was reported
            else:
                reason = "route back" if lost is not None else "new route"
                change = RouteChange(
                    "reachable", prefix, best.router_id[:32], None, best.peer, best_metric, reason
                )
        elif old.peer != best.peer:
            better = (
                f"a better route: metric {old_metric} -> {best_metric}"
                if old_metric < INFINITY
                else "the old route is unusable"
            )
            change = RouteChange(
                "failover",
                prefix,
                best.router_id[:32],
                old.peer,
                best.peer,
                best_metric,
                self._why_gone(entry, old, now, better),
            )
        else:
            return
        self._dead.append(change)

    def _report_lost(self, entry: PrefixEntry) -> None:
        """Report a loss held back by _LOST_REPORT_GRACE: no route was found meanwhile."""
        reason, entry.lost_reason = entry.lost_reason, None
        key = entry.last_router_id[:32]
        if reason is None or len(key) != 32:
            return
        self._dead.append(
            RouteChange("lost", entry.prefix, key, entry.lost_peer, None, INFINITY, reason)
        )

    def _why_gone(self, entry: PrefixEntry, old: Route, now: float, otherwise: str) -> str:
        """Why the selected route ``old`` stopped being the one, in words."""
        if old.peer not in self._neighbours:
            return "the link to the old next hop went down"
        if entry.route(old.peer) is not old:
            return "the route through the old next hop expired"
        if old.metric >= INFINITY:
            return "the old next hop retracted the route"
        if entry.demoted is not None and entry.demoted.get(old.peer, 0.0) > now:
            return "the route audit demoted the old next hop"
        return otherwise

    def _update_tlv(self, entry: PrefixEntry, route: Route, now: float) -> tuple[bytes, int]:
        """Our advertisement of ``route`` (recording it as a feasibility distance)."""
        metric = metric_add(route.metric, self._neighbours[route.peer].cost)
        demoted = entry.demoted
        if demoted is not None and demoted.get(route.peer, 0.0) > now:
            metric = _DEMOTED_METRIC
        router_id, seqno, issued, signature, prefix = route.announcement
        self._sources.advertised(
            prefix, router_id, seqno, metric, now + self.params.source_gc_time, issued
        )
        tlv = encode_relayed_update(
            prefix,
            seqno,
            metric,
            self._update_interval_cs,
            router_id,
            signature,
            issued,
            route.delegation,
        )
        return tlv, metric

    def _retraction_tlv(self, prefix: bytes, seqno: int, router_id: bytes) -> bytes:
        return encode_retraction(prefix, seqno, self._update_interval_cs, router_id)

    def _advertise(
        self, entry: PrefixEntry, targets: Iterable[Neighbour], now: float, poison: bool
    ) -> None:
        """Send ``entry``'s current state to ``targets`` (split horizon on the next hop)."""
        if self.client:
            return  # a client never re-advertises (nor retracts) what it learned
        route = entry.selected
        if route is None:
            tlv = self._retraction_tlv(entry.prefix, entry.last_seqno, entry.last_router_id)
            for nb in targets:
                self._queue(nb.peer, tlv)
                self.counters["retractions_sent"] += 1
            entry.advertised_metric = INFINITY
            entry.advertised_peer = None
            return
        tlv, metric = self._update_tlv(entry, route, now)
        for nb in targets:
            if nb.peer != route.peer:
                self._queue(nb.peer, tlv)
                self.counters["updates_sent"] += 1
        if (
            poison
            and entry.advertised_metric < INFINITY
            and route.peer != entry.advertised_peer
            and route.peer in self._neighbours
        ):
            # Poisoned reverse once, when the next hop moves: the new next hop must not keep
            # using a route of ours that now leads back through itself.
            self._queue(
                route.peer, self._retraction_tlv(entry.prefix, route.seqno, route.router_id)
            )
            self.counters["retractions_sent"] += 1
        entry.advertised_metric = metric
        entry.advertised_peer = route.peer

    def _dump(self, targets: list[Neighbour], now: float) -> None:
        """Full table (own prefix, selected routes, held retractions) to usable ``targets``."""
        targets = [nb for nb in targets if nb.usable]
        if not targets:
            return
        self.counters["full_dumps"] += len(targets)
        for announcement in self._origin.announcements.values():
            for nb in targets:
                self._queue(nb.peer, announcement.tlv)
            self.counters["updates_sent"] += len(targets)
        for entry in self._table.values():
            if entry.selected is not None or entry.hold_until > now:
                self._advertise(entry, targets, now, poison=False)

    # ------------------------------------------------------------------ seqno requests

    def _request_seqno(self, peer: int, prefix: bytes, router_id: bytes, now: float) -> None:
        source = self._sources.get(prefix, router_id)
        if source is None:
            return  # without a feasibility distance every update is feasible
        seqno = (source.seqno + 1) & 0xFFFF
        if not self.requests.should_send(peer, prefix, router_id, seqno, now):
            return
        self.counters["seqno_requests_sent"] += 1
        key = (prefix, seqno, router_id)
        if key != self._last_request[0]:  # a starved prefix asks every neighbour the same
            tlv = encode_tlv(SeqnoRequest(prefix, seqno, self.params.seqno_request_hops, router_id))
            self._last_request = (key, tlv)
        self._queue(peer, self._last_request[1])

    def _request_starved(self, entry: PrefixEntry, now: float) -> None:
        """No feasible route left: ask every neighbour still announcing it for a newer seqno."""
        for route in entry.routes:
            if route.metric < INFINITY and route.peer in self._neighbours:
                self._request_seqno(route.peer, entry.prefix, route.router_id, now)

    def _on_seqno_request(self, nb: Neighbour, req: SeqnoRequest, now: float) -> None:
        self.counters["seqno_requests_received"] += 1
        prefix = req.prefix64
        peer = nb.peer
        announcement = self._origin.announcements.get(prefix)
        if announcement is not None:
            if req.router_id == self.router_id and seqno_newer(req.seqno, announcement.seqno):
                if self._origin.request(prefix, now):
                    self._bumped(prefix)
            elif self._may_reply(peer, now):
                self._queue(peer, announcement.tlv)
                self.counters["updates_sent"] += 1
            return
        if self.client:
            return  # others' prefixes: a client neither answers for them nor passes requests on
        entry = self._table.get(prefix)
        selected = entry.selected if entry is not None else None
        if selected is not None and (
            selected.router_id != req.router_id or seqno_newer_or_equal(selected.seqno, req.seqno)
        ):
            if selected.peer != peer and entry is not None:
                # Answered with our route: one update per request, within the neighbour's
                # answer budget, so requests cannot be amplified into a flood of updates.
                if self._answer_budget[peer].take(now):
                    self._advertise(entry, [nb], now, poison=False)
                else:
                    self.counters["seqno_answers_over_budget"] += 1
            return
        if req.hop_count < 2 or entry is None:
            return
        target = self._forward_target(entry, peer, req.router_id)
        if target is None:
            return
        if not self.requests.first_sighting(prefix, req.router_id, req.seqno, target, now):
            self.counters["seqno_requests_deduped"] += 1
            return
        if not self.requests.may_forward(peer, prefix, req.router_id, req.seqno, target, now):
            self.counters["seqno_requests_over_budget"] += 1
            return
        self._forward_request(
            target, prefix, req.router_id, req.seqno, req.hop_count - 1, peer, now
        )

    def _forward_target(self, entry: PrefixEntry, asker: int, router_id: bytes) -> int | None:
        """Where a request from ``asker`` goes: our next hop, else a neighbour announcing it."""
        selected = entry.selected
        if selected is not None and selected.peer != asker:
            return selected.peer
        target: int | None = None
        for route in entry.routes:
            if route.peer != asker and route.metric < INFINITY and route.peer in self._neighbours:
                target = route.peer
                if route.router_id == router_id:
                    break
        return target

    def _forward_request(
        self,
        target: int,
        prefix: bytes,
        router_id: bytes,
        seqno: int,
        hop_count: int,
        asker: int,
        now: float,
    ) -> None:
        self.counters["seqno_requests_forwarded"] += 1
        self.requests.forwarded(target, prefix, router_id, seqno, hop_count, asker, now)
        self._queue(target, encode_tlv(SeqnoRequest(prefix, seqno, hop_count, router_id)))

    def _reforward(self, dead: int, now: float) -> None:
        """Neighbour ``dead`` is gone: requests we forwarded to it within the resend time are
        lost with it; answer them from our new route, or forward them along it, at once."""
        for prefix, router_id, seqno, hops, asker in self.requests.take_forwarded(dead, now):
            entry = self._table.get(prefix)
            nb = self._neighbours.get(asker)
            if entry is None or nb is None:
                continue
            selected = entry.selected
            if selected is not None and (
                selected.router_id != router_id or seqno_newer_or_equal(selected.seqno, seqno)
            ):
                if selected.peer != asker:
                    self._advertise(entry, [nb], now, poison=False)
                continue
            target = self._forward_target(entry, asker, router_id)
            if target is not None:
                self._forward_request(target, prefix, router_id, seqno, hops, asker, now)

    def _bumped(self, prefix64: bytes) -> None:
        self._own_pending[prefix64] = None
        self.counters["seqno_bumps"] += 1

    # ------------------------------------------------------------------ timers

    def _push(self, when: float, kind: int, prefix: bytes) -> None:
        heapq.heappush(self._heap, (when, kind, prefix))
        if len(self._heap) > 4 * len(self._table) + 1024:
            self._compact_heap()

    def _arm(self, entry: PrefixEntry, expires: float) -> None:
        """Make sure ``entry``'s route-expiry timer fires by ``expires``."""
        if expires < entry.timer:
            entry.timer = expires
            self._push(expires, _ROUTE_EXPIRY, entry.prefix)

    def _compact_heap(self) -> None:
        items: list[tuple[float, int, bytes]] = []
        for prefix, entry in self._table.items():
            if entry.timer < float("inf"):
                items.append((entry.timer, _ROUTE_EXPIRY, prefix))
            if entry.hold_until > 0:
                items.append((entry.hold_until, _HOLD_EXPIRY, prefix))
        # at most one retry per prefix; demotions are bounded by the audit's probe rate
        items += [
            item for item in self._heap if item[1] in (_SEQNO_RETRY, _DEMOTION_EXPIRY, _LOST_REPORT)
        ]
        heapq.heapify(items)
        self._heap = items

    def _on_heap_item(self, kind: int, prefix: bytes, now: float) -> None:
        entry = self._table.get(prefix)
        if kind == _SEQNO_RETRY:
            retry, again = self.requests.take_retry(prefix)
            if not retry or entry is None or entry.selected is not None:
                return  # answered (or forgotten) meanwhile
            self.counters["seqno_request_retries"] += 1
            self._request_starved(entry, now)
            if again:
                self._push(now + self.params.seqno_request_resend, _SEQNO_RETRY, prefix)
            return
        if entry is None:
            return
        if kind == _LOST_REPORT:
            if entry.selected is None and entry.lost_reason is not None:
                self._report_lost(entry)
            return
        if kind == _DEMOTION_EXPIRY:
            if entry.demoted is not None:
                entry.demoted = {p: t for p, t in entry.demoted.items() if t > now} or None
                self._reselect(entry, now)
            return
        if kind == _HOLD_EXPIRY:
            if entry.selected is None and 0 < entry.hold_until <= now:
                entry.hold_until = 0.0
                if not entry.routes:
                    self._forget(prefix)
            return
        if entry.timer > now:
            return  # stale: an earlier expiry was armed and handled since
        routes = entry.routes
        kept = [route for route in routes if route.expires > now]
        expired = len(routes) - len(kept)
        entry.timer = float("inf")
        if kept:
            self._arm(entry, min(route.expires for route in kept))
        if expired:
            entry.routes = kept
            self.counters["routes_expired"] += expired
            self._route_count -= expired
            self._reselect(entry, now)

    # ------------------------------------------------------------------ output

    def _queue(self, peer: int, tlv: bytes) -> None:
        out = self._out.get(peer)
        if out is None:
            self._out[peer] = [tlv]
        else:
            out.append(tlv)

    def _flush_triggered(self, now: float) -> None:
        """Send triggered updates. Retractions go at once; what ends a starvation (``_urgent``)
        at once too unless an urgent flush went out within ``urgent_update_pace``, and then
        with the next one; every other change (a first route too: in a cold start it is
        usually not the last) ``update_coalesce`` after the first one held, so a prefix whose
        route changes several times within the window costs each neighbour one update, with
        its state when the window closes."""
        pending = self._pending
        self._pending = {}
        urgent = self._urgent
        self._urgent = {}
        held = self._held
        urgent_held = self._urgent_held
        window = self.params.update_coalesce
        first_hold = self.params.first_update_hold
        urgent_now = now >= self._urgent_last + self.params.urgent_update_pace
        send: list[PrefixEntry] = []
        sent_urgent = False
        for prefix in pending:
            entry = self._table.get(prefix)
            if entry is None:
                held.pop(prefix, None)
                urgent_held.pop(prefix, None)
            elif window <= 0 or entry.selected is None:
                held.pop(prefix, None)
                urgent_held.pop(prefix, None)
                self._first_held.pop(prefix, None)
                send.append(entry)
            elif prefix in urgent or prefix in urgent_held:
                held.pop(prefix, None)
                self._first_held.pop(prefix, None)
                if urgent_now:
                    urgent_held.pop(prefix, None)
                    send.append(entry)
                    sent_urgent = True
                else:
                    urgent_held[prefix] = None
            elif first_hold > 0 and entry.advertised_metric >= INFINITY and entry.hold_until == 0:
                # never advertised: its first advertisement waits for the routes to settle
                if self._first_held.setdefault(prefix, now + first_hold) < self._first_due:
                    self._first_due = self._first_held[prefix]
            elif prefix in held:
                self.counters["updates_coalesced"] += 1
            else:
                held[prefix] = None
                if self._held_due == float("inf"):
                    self._held_due = now + window
        if now >= self._held_due:
            send.extend(self._still_to_send(held))
            self._held = {}
            self._held_due = float("inf")
        elif not held:
            self._held_due = float("inf")
        if urgent_held and now >= self._urgent_due:
            send.extend(self._still_to_send(urgent_held))
            urgent_held.clear()
            sent_urgent = True
        if sent_urgent:
            self._urgent_last = now
        self._urgent_due = (
            self._urgent_last + self.params.urgent_update_pace if urgent_held else float("inf")
        )
        if now >= self._first_due:
            first = self._first_held
            for prefix in [p for p, due in first.items() if due <= now]:
                del first[prefix]
                entry = self._table.get(prefix)
                if entry is not None and entry.selected is not None:
                    send.append(entry)
            self._first_due = min(first.values(), default=float("inf"))
        if send:
            usable = [nb for nb in self._neighbours.values() if nb.usable]
            for entry in send:
                self._advertise(entry, usable, now, poison=True)

    def _still_to_send(self, prefixes: Iterable[bytes]) -> list[PrefixEntry]:
        """The entries of held ``prefixes`` that still need an update: a route, or an
        advertisement to retract (lost meanwhile and never advertised: nobody needs one)."""
        entries = []
        for prefix in prefixes:
            entry = self._table.get(prefix)
            if entry is not None and (
                entry.selected is not None or entry.advertised_metric < INFINITY
            ):
                entries.append(entry)
        return entries

    def _flush(self, now: float) -> list[Action]:
        if self._own_pending:
            announcements = self._origin.announcements
            tlvs = [announcements[prefix].tlv for prefix in self._own_pending]
            self._own_pending = {}
            for nb in self._neighbours.values():
                if nb.usable:
                    for tlv in tlvs:
                        self._queue(nb.peer, tlv)
                    self.counters["updates_sent"] += len(tlvs)
        if (
            self._pending
            or now >= self._held_due
            or now >= self._first_due
            or now >= self._urgent_due
        ):
            self._flush_triggered(now)
        actions = self._dead
        self._dead = []
        if not self._out:
            return actions
        limit = self.params.max_payload_size
        for peer, tlvs in self._out.items():
            if peer not in self._neighbours:
                continue
            batch: list[bytes] = []
            size = 0
            for tlv in tlvs:
                if batch and size + len(tlv) > limit:
                    actions.append(SendControl(peer, b"".join(batch)))
                    batch, size = [], 0
                batch.append(tlv)
                size += len(tlv)
            actions.append(SendControl(peer, b"".join(batch)))
        self._out = {}
        return actions
