"""Routers on ideal links, driven by the engine: the small, inspectable net the router tests use.

Node ``i`` knows its neighbour ``j`` as peer id ``j``. Each direction of a link has its own
one-way delay; a payload sent at t arrives at t + delay unless the link went down (or the sender
was silenced) first. A node added with ``client=True`` runs a client router (``--role client``)
and its neighbours are told so at ``neighbour_up``, as the client bit of a real handshake would.
Unlike :class:`hyphal.sim.engine.Simulator` there is no bandwidth, loss or
redial: ``link``/``unlink`` tell both ends at once, and a ``NeighbourDead`` closes the link both
ways unless the node that declared it is silenced (its close would never be seen).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable

from hyphal.crypto.signing import Signer, XEdDSASigner
from hyphal.identity import NodeIdentity
from hyphal.routing.auth import AnnouncementPool
from hyphal.routing.params import DEFAULT_PARAMS, RoutingParams
from hyphal.routing.router import Router
from hyphal.routing.types import Action, NeighbourDead, RouteChange, SendControl
from hyphal.sim.engine import Driven, Engine, MemoVerifier

_IDENTITIES: list[NodeIdentity] = []


def identity(index: int) -> NodeIdentity:
    """The key pair of node ``index``: generated once per process, the same for every net."""
    while len(_IDENTITIES) <= index:
        _IDENTITIES.append(NodeIdentity.generate())
    return _IDENTITIES[index]


def make_router(
    index: int,
    now: float = 0.0,
    params: RoutingParams = DEFAULT_PARAMS,
    verifier: MemoVerifier | None = None,
    seed: int = 0,
    client: bool = False,
    wall_clock: Callable[[], float] = time.time,
    signer: Signer | None = None,
    announcement_pool: AnnouncementPool | None = None,
) -> Router:
    """A router for node ``index`` with a seeded random source (a client router if ``client``);
    ``wall_clock`` dates what it signs, ``signer`` (else the node's own) signs it, and
    ``announcement_pool`` is shared with the other routers of the process, as the simulator's."""
    ident = identity(index)
    return Router(
        ident.public_key,
        signer or XEdDSASigner(ident.private_bytes()),
        params,
        now,
        random.Random(seed * 1000 + index),
        verifier=verifier,
        client=client,
        wall_clock=wall_clock,
        announcement_pool=announcement_pool,
    )


def _key(a: int, b: int) -> tuple[int, int]:
    return (min(a, b), max(a, b))


class RouterNet:
    """Routers keyed by node index on ideal links; the engine runs them in a strict mode."""

    def __init__(
        self, *, params: RoutingParams = DEFAULT_PARAMS, seed: int = 1, now: float = 0.0
    ) -> None:
        self.params = params
        self.seed = seed
        self.engine = Engine(now=now, strict=True)
        self.verifier = MemoVerifier()
        self.routers: dict[int, Router] = {}
        """Node index -> router; a test may put a fresh router in place (a restart)."""
        self.delays: dict[tuple[int, int], float] = {}
        """Directed one-way delays."""
        self.up: set[tuple[int, int]] = set()
        """Links that are up, as (lower, higher) node indices."""
        self.silenced: set[int] = set()
        """Nodes whose sends are lost (and whose link closes nobody sees)."""
        self.dead_events: list[tuple[float, int, int]] = []
        """(time, node, peer) for every ``NeighbourDead``."""
        self.dead_event_index: list[int] = []
        """The engine event during which each entry of ``dead_events`` happened."""
        self.on_event: Callable[[RouterNet, int], None] | None = None
        """Called with the node after every timer run or delivery (e.g. a loop check)."""
        self.route_changes: list[tuple[float, int, RouteChange]] = []
        """(time, node, change) for every RouteChange (routers with ``report_routes`` only)."""
        self.delivered = 0
        self.clients: set[int] = set()
        """Nodes running the client role."""
        self._epoch: dict[tuple[int, int], int] = {}
        self._slots: dict[int, Driven[Action]] = {}

    @property
    def now(self) -> float:
        return self.engine.now

    @property
    def events(self) -> int:
        """Index of the event being processed (timer run or delivery)."""
        return self.engine.stats.events

    # -- building
    def add_node(self, index: int, *, client: bool = False) -> Router:
        if client:
            self.clients.add(index)
        router = make_router(
            index, self.now, self.params, self.verifier, self.seed, client=index in self.clients
        )
        self.routers[index] = router
        return router

    def link(self, a: int, b: int, delay: float, delay_back: float | None = None) -> None:
        for node in (a, b):
            if node not in self.routers:
                self.add_node(node)
        self.delays[(a, b)] = delay
        self.delays[(b, a)] = delay if delay_back is None else delay_back
        key = _key(a, b)
        self.up.add(key)
        self._epoch[key] = self._epoch.get(key, 0) + 1
        self._slot(a).feed(self.routers[a].neighbour_up(b, self.now, self._client_key(b)))
        self._slot(b).feed(self.routers[b].neighbour_up(a, self.now, self._client_key(a)))

    def _client_key(self, node: int) -> bytes | None:
        """What a neighbour of ``node`` learns from its handshake's client bit."""
        return identity(node).public_key if node in self.clients else None

    def unlink(self, a: int, b: int) -> None:
        """The link layer noticed the link closing (both ends told at once)."""
        key = _key(a, b)
        if key not in self.up:
            return
        self.up.discard(key)
        self._epoch[key] += 1
        self._slot(a).feed(self.routers[a].neighbour_down(b, self.now))
        self._slot(b).feed(self.routers[b].neighbour_down(a, self.now))

    def node(self, index: int) -> Router:
        return self.routers[index]

    def prefix(self, index: int) -> bytes:
        return self.routers[index].own_prefix64

    # -- running
    def _slot(self, index: int) -> Driven[Action]:
        """The engine slot of ``index``, switched to whatever router ``routers`` holds now."""
        slot = self._slots.get(index)
        if slot is None:
            slot = self._slots[index] = self.engine.drive(self._applier(index))
            slot.on_fired = lambda: self._observe(index)
        slot.use(self.routers[index])
        return slot

    def _applier(self, src: int) -> Callable[[Iterable[Action]], None]:
        return lambda actions: self._apply(src, actions)

    def _apply(self, src: int, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, SendControl):
                self._send(src, action.peer, action.payload)
            elif isinstance(action, NeighbourDead):
                self.dead_events.append((self.now, src, action.peer))
                self.dead_event_index.append(self.events)
                if src not in self.silenced:
                    self.unlink(src, action.peer)
            elif isinstance(action, RouteChange):
                self.route_changes.append((self.now, src, action))

    def _send(self, src: int, dst: int, payload: bytes) -> None:
        key = _key(src, dst)
        if key not in self.up or src in self.silenced or dst in self.silenced:
            return
        epoch = self._epoch[key]
        self.engine.schedule(
            self.now + self.delays[(src, dst)],
            lambda: self._deliver(src, dst, payload, epoch),
        )

    def _deliver(self, src: int, dst: int, payload: bytes, epoch: int) -> None:
        key = _key(src, dst)
        if self._epoch.get(key) != epoch or key not in self.up or src in self.silenced:
            return
        self.delivered += 1
        self._slot(dst).feed(self.routers[dst].handle_control(src, payload, self.now))
        self._observe(dst)

    def _observe(self, node: int) -> None:
        if self.on_event is not None:
            self.on_event(self, node)

    def run_until(self, end: float) -> None:
        # A test may have called a router directly or swapped one in: re-read every deadline.
        for index in self.routers:
            self._slot(index).rearm()
        self.engine.run_until(end)

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


def loop_checker(net: RouterNet, node: int) -> None:
    """An ``on_event`` hook: any new loop must pass through the node whose state just changed."""
    net.assert_no_loop_from(node)
