"""A tiny discrete-event harness for router tests: real Routers, real encoded payloads, fake clock.

Node ``i`` knows its neighbour ``j`` as peer id ``j``. Links have a one-way delay each way; a
payload sent at t arrives at t + delay unless the link went down (or a node was silenced) first.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count

from hyphal.crypto.signing import XEdDSASigner, XEdDSAVerifier
from hyphal.identity import NodeIdentity
from hyphal.routing import DEFAULT_PARAMS, NeighbourDead, Router, RoutingParams, SendControl
from hyphal.routing.types import Action


class MemoVerifier:
    """Shares verification results across routers (what the simulator does at scale)."""

    def __init__(self) -> None:
        self._inner = XEdDSAVerifier()
        self._memo: dict[tuple[bytes, bytes, bytes], bool] = {}
        self.calls = 0

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        key = (public_key, message, signature)
        result = self._memo.get(key)
        if result is None:
            self.calls += 1
            result = self._memo[key] = self._inner.verify(public_key, message, signature)
        return result


_IDENTITIES: list[NodeIdentity] = []


def identity(index: int) -> NodeIdentity:
    """Deterministic-per-run identities (generated once per test session, keys are cheap)."""
    while len(_IDENTITIES) <= index:
        _IDENTITIES.append(NodeIdentity.generate())
    return _IDENTITIES[index]


def make_router(index: int, now: float = 0.0, params: RoutingParams = DEFAULT_PARAMS,
                verifier: MemoVerifier | None = None, seed: int = 0) -> Router:
    ident = identity(index)
    return Router(ident.public_key, XEdDSASigner(ident.private_bytes()), params, now,
                  random.Random(seed * 1000 + index), verifier=verifier)


@dataclass
class Net:
    params: RoutingParams = DEFAULT_PARAMS
    seed: int = 1
    now: float = 0.0
    routers: dict[int, Router] = field(default_factory=dict)
    delays: dict[tuple[int, int], float] = field(default_factory=dict)  # directed one-way
    up: set[tuple[int, int]] = field(default_factory=set)  # undirected (min, max)
    silenced: set[int] = field(default_factory=set)
    dead_events: list[tuple[float, int, int]] = field(default_factory=list)
    on_event: Callable[[Net, int], None] | None = None
    verifier: MemoVerifier = field(default_factory=MemoVerifier)
    delivered: int = 0
    events: int = 0  # index of the event being processed (timer call or delivery)
    dead_event_index: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._events: list[tuple[float, int, int, int, bytes, int]] = []
        self._seq = count()
        self._epoch: dict[tuple[int, int], int] = {}
        self._timers: list[tuple[float, int]] = []
        self._deadline: dict[int, float] = {}
        self._touched: set[int] = set()

    # -- building
    def add_node(self, index: int) -> Router:
        router = make_router(index, self.now, self.params, self.verifier, self.seed)
        self.routers[index] = router
        return router

    def link(self, a: int, b: int, delay: float, delay_back: float | None = None) -> None:
        for node in (a, b):
            if node not in self.routers:
                self.add_node(node)
        self.delays[(a, b)] = delay
        self.delays[(b, a)] = delay if delay_back is None else delay_back
        key = (min(a, b), max(a, b))
        self.up.add(key)
        self._epoch[key] = self._epoch.get(key, 0) + 1
        self._apply(a, self.routers[a].neighbour_up(b, self.now))
        self._apply(b, self.routers[b].neighbour_up(a, self.now))
        self._touched.update((a, b))

    def unlink(self, a: int, b: int) -> None:
        """The link layer noticed the link closing (both ends told at once)."""
        key = (min(a, b), max(a, b))
        if key not in self.up:
            return
        self.up.discard(key)
        self._epoch[key] += 1
        self._apply(a, self.routers[a].neighbour_down(b, self.now))
        self._apply(b, self.routers[b].neighbour_down(a, self.now))
        self._touched.update((a, b))

    def node(self, index: int) -> Router:
        return self.routers[index]

    def prefix(self, index: int) -> bytes:
        return self.routers[index].own_prefix64

    # -- running
    def _apply(self, src: int, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendControl):
                dst = action.peer
                key = (min(src, dst), max(src, dst))
                if key not in self.up or src in self.silenced or dst in self.silenced:
                    continue
                when = self.now + self.delays[(src, dst)]
                heapq.heappush(self._events, (when, next(self._seq), src, dst, action.payload,
                                              self._epoch[key]))
            elif isinstance(action, NeighbourDead):
                self.dead_events.append((self.now, src, action.peer))
                self.dead_event_index.append(self.events)
                if src not in self.silenced:  # a silenced node's link close is never seen
                    self.unlink(src, action.peer)

    def _next_timer(self) -> tuple[float, int]:
        """Earliest router deadline, from a lazy heap refreshed for every node that acted."""
        timers = self._timers
        while timers:
            when, index = timers[0]
            if self._deadline.get(index) == when:
                return when, index
            heapq.heappop(timers)
        return float("inf"), -1

    def _refresh(self, index: int) -> None:
        deadline = self.routers[index].next_deadline()
        if self._deadline.get(index) != deadline:
            self._deadline[index] = deadline
            heapq.heappush(self._timers, (deadline, index))

    def run_until(self, end: float) -> None:
        for index in self.routers:
            self._refresh(index)
        while True:
            timer_at, timer_node = self._next_timer()
            event_at = self._events[0][0] if self._events else float("inf")
            if min(timer_at, event_at) > end:
                break
            self.events += 1
            if event_at <= timer_at:
                when, _, src, dst, payload, epoch = heapq.heappop(self._events)
                self.now = max(self.now, when)
                key = (min(src, dst), max(src, dst))
                if self._epoch.get(key) != epoch or key not in self.up or src in self.silenced:
                    continue
                self.delivered += 1
                self._apply(dst, self.routers[dst].handle_control(src, payload, self.now))
                node = dst
            else:
                self.now = max(self.now, timer_at)
                self._apply(timer_node, self.routers[timer_node].on_timer(self.now))
                node = timer_node
                if self.routers[node].next_deadline() <= timer_at:
                    raise AssertionError(f"router {node}: on_timer did not advance its deadline")
            self._refresh(node)
            for touched in self._touched:
                self._refresh(touched)
            self._touched.clear()
            if self.on_event is not None:
                self.on_event(self, node)
        self.now = max(self.now, end)

    def run_for(self, duration: float) -> None:
        self.run_until(self.now + duration)

    # -- inspection
    def path(self, src: int, dst: int) -> list[int] | None:
        """Hops from src to dst following next_hop; None on a black hole. Raises on a loop."""
        target = self.prefix(dst)
        hops = [src]
        seen = {src}
        node = src
        while node != dst:
            nxt = self.routers[node].next_hop(target)
            if nxt is None:
                return None
            if nxt in seen:
                raise AssertionError(f"routing loop towards {dst}: {[*hops, nxt]}")
            seen.add(nxt)
            hops.append(nxt)
            node = nxt
        return hops

    def assert_no_loop_from(self, node: int) -> None:
        for dst in self.routers:
            if dst != node:
                self.path(node, dst)


def loop_checker(net: Net, node: int) -> None:
    """Any new loop must pass through the node whose state just changed."""
    net.assert_no_loop_from(node)
