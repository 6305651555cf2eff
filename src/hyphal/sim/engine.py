"""Discrete-event engine: one event queue and one simulated clock that drive any sans-IO core.

:class:`Engine` owns the queue, ordered by (time, insertion order), so a run is a pure function of
what was scheduled. A core is anything with ``next_deadline()`` and ``on_timer(now)``: the
``TimedCore`` protocol of :mod:`hyphal.node.driver`, which drives the same cores in the daemon.
That is the router today, and the bus, membership and mapping cores to come. The engine drives a
core through a :class:`Driven` slot: every batch of actions the core returns goes through
:meth:`Driven.feed`, which hands them to the adapter's ``apply`` and then re-arms the slot's
single timer from ``next_deadline()``. A timer event whose time no longer matches the slot's
pending deadline is stale and skipped (lazy rescheduling). Inputs reach a core as plain
callbacks the adapter schedules, e.g. a payload arriving one simulated latency later.

:class:`Simulator` is the router adapter used by ``hyphal sim``: real routers on the simulated
links of :mod:`hyphal.sim.links`. It plays the link layer's part and nothing more: it assigns peer
ids per link end, calls ``neighbour_up`` when a connection is made, and on ``NeighbourDead``
closes that end (``neighbour_down``), tells the far end (if it is alive and the link works, one
latency later, as a TCP FIN would), and redials while the link and both nodes are up. A silently
failed link or node simply stops carrying traffic; routers must notice through missing hellos.

Signature checks go through one process-wide memo (:class:`MemoVerifier`): a verification is a
pure function of (public key, message, signature), so sharing the results between routers
changes no routing decision, only the wall-clock time.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from hyphal.crypto.signing import XEdDSASigner, XEdDSAVerifier
from hyphal.identity import NodeIdentity, prefix64_for_public_key
from hyphal.routing.auth import AnnouncementPool
from hyphal.routing.params import DEFAULT_PARAMS, RoutingParams
from hyphal.routing.router import Router
from hyphal.routing.types import Action, NeighbourDead, SendControl
from hyphal.sim.links import DEFAULT_BANDWIDTH_BPS, FRAMING_OVERHEAD, SimLink
from hyphal.sim.topologies import Topology

if TYPE_CHECKING:
    # The same core interface the daemon's driver runs; imported for typing only, so the
    # simulator does not load the daemon.
    from hyphal.node.driver import TimedCore as Core

CONNECT_RTTS = 1.5
"""A new link needs TCP's handshake plus the Noise XX handshake: about 1.5 round trips."""
REDIAL_DELAY_S = 1.0
"""Back-off before a link whose connection was closed is dialled again."""
INF = float("inf")

A = TypeVar("A")


class TimerStall(AssertionError):
    """A core's deadline was not in the future right after its timer ran (strict engines only)."""


@dataclass
class EngineStats:
    events: int = 0
    deliveries: int = 0
    timers: int = 0
    stale_timers: int = 0
    dropped_no_link: int = 0
    dropped_in_flight: int = 0
    neighbour_dead: int = 0
    router_calls: int = 0
    """Batches of actions fed back from any core (one per call into it)."""
    timer_stalls: int = 0
    """Times a core's deadline was not in the future right after its timer ran."""


class Driven(Generic[A]):
    """One core's place in the engine: the core (None while its machine is down) and its timer."""

    def __init__(
        self, engine: Engine, apply: Callable[[Iterable[A]], None], core: Core[A] | None = None
    ) -> None:
        self._engine = engine
        self._apply = apply
        self.core = core
        self.timer_at = INF
        self.on_fired: Callable[[], None] | None = None
        """Called after a timer of this core ran and its actions were applied."""

    def replace(self, core: Core[A] | None) -> None:
        """Swap in another core (a restart) or None (the machine is down); its timer is re-armed."""
        self.core = core
        self.timer_at = INF
        self.rearm()

    def use(self, core: Core[A] | None) -> None:
        """Make ``core`` this slot's core, replacing another one (no-op if it already is)."""
        if core is not self.core:
            self.replace(core)

    def feed(self, actions: Iterable[A], *, after_timer: bool = False) -> None:
        """Apply the actions a call into the core returned, then re-arm its timer."""
        self._engine.stats.router_calls += 1
        self._apply(actions)
        self.rearm(after_timer=after_timer)

    def rearm(self, *, after_timer: bool = False) -> None:
        """Push a timer event if the core's deadline moved (the old one goes stale)."""
        core = self.core
        if core is None:
            return
        engine = self._engine
        deadline = core.next_deadline()
        if deadline <= engine.now:
            if after_timer:
                # The core's timer has just run, so nothing can be due now any more; a deadline
                # that is not in the future (e.g. ``last + interval`` versus ``now - last >=
                # interval`` rounding differently) would spin forever. Nudge it and count it.
                engine.stats.timer_stalls += 1
                if engine.strict:
                    raise TimerStall(f"{core!r}: on_timer did not advance its deadline")
                deadline = engine.now + 1e-6
            else:
                deadline = engine.now
        if deadline != self.timer_at:
            self.timer_at = deadline
            engine.schedule(deadline, lambda: self._fire(deadline))

    def _fire(self, at: float) -> None:
        core = self.core
        stats = self._engine.stats
        if core is None or at != self.timer_at:
            stats.stale_timers += 1
            return
        stats.timers += 1
        self.timer_at = INF
        self.feed(core.on_timer(self._engine.now), after_timer=True)
        if self.on_fired is not None:
            self.on_fired()


class Engine:
    """The event queue and the clock; events are callbacks run in (time, insertion) order."""

    def __init__(self, *, now: float = 0.0, strict: bool = False) -> None:
        self.now = now
        self.strict = strict
        """Raise :class:`TimerStall` instead of nudging a stalled core (for tests)."""
        self.stats = EngineStats()
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    def schedule(self, at: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` at simulated time ``at`` (not before the current time)."""
        self._seq += 1
        heapq.heappush(self._queue, (max(at, self.now), self._seq, fn))

    def drive(self, apply: Callable[[Iterable[A]], None], core: Core[A] | None = None) -> Driven[A]:
        """A slot for ``core`` whose actions go to ``apply``; its timer is armed at once."""
        slot = Driven(self, apply, core)
        slot.rearm()
        return slot

    def step(self, limit: float) -> bool:
        """Process the next event if it is due by ``limit``; False (clock unchanged) if none is."""
        queue = self._queue
        if not queue or queue[0][0] > limit:
            return False
        at, _, fn = heapq.heappop(queue)
        self.now = max(self.now, at)  # a test may have moved the clock past queued events
        self.stats.events += 1
        fn()
        return True

    def run_until(self, t_end: float) -> None:
        """Process every event up to and including ``t_end``; the clock ends at ``t_end``."""
        while self.step(t_end):
            pass
        self.now = max(self.now, t_end)

    def pending(self) -> int:
        return len(self._queue)


class MemoVerifier:
    """A verifier that memoises results process-wide (verification is a pure function)."""

    def __init__(self) -> None:
        self._inner = XEdDSAVerifier()
        self._memo: dict[tuple[bytes, bytes, bytes], bool] = {}
        self.calls = 0
        self.computed = 0

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        self.calls += 1
        key = (public_key, message, signature)
        result = self._memo.get(key)
        if result is None:
            self.computed += 1
            result = self._memo[key] = self._inner.verify(public_key, message, signature)
        return result


@dataclass
class SimNode:
    """One simulated machine: a key pair, a router while it is alive, and its link ends."""

    index: int
    identity: NodeIdentity
    public_key: bytes
    prefix: bytes
    signer: XEdDSASigner
    slot: Driven[Action]
    router: Router | None = None
    """The slot's core while the node is alive."""
    alive: bool = False
    starts: int = 0
    peers: dict[int, int] = field(default_factory=dict)
    """Open link ends: peer id -> link index."""
    next_peer_id: int = 1
    sent_messages: int = 0
    sent_bytes: int = 0


class Simulator:
    """N real routers on a topology of simulated links."""

    def __init__(
        self,
        topology: Topology,
        *,
        seed: int = 1,
        params: RoutingParams = DEFAULT_PARAMS,
        jitter: float = 0.0,
        loss: float = 0.0,
        loss_mode: str = "retransmit",
        bandwidth_bps: float = DEFAULT_BANDWIDTH_BPS,
        verifier: MemoVerifier | None = None,
        share_announcements: bool = True,
    ) -> None:
        self.topology = topology
        self.params = params
        self.seed = seed
        self.rng = random.Random(f"sim-{seed}")
        self.engine = Engine()
        self.stats = self.engine.stats
        self.verifier = verifier or MemoVerifier()
        # Every router holds a relayed announcement as the same object (it is the same bytes
        # in every router): the process holds it once, each router's tables still point at it.
        # ``share_announcements=False`` gives every router its own copies, as separate daemons
        # have (the scale bench's comparison).
        self.announcements = AnnouncementPool() if share_announcements else None
        self.version = 0
        """Bumped whenever the true graph changes (links, node liveness, latencies)."""
        key_rng = random.Random(f"keys-{seed}")
        self.nodes: list[SimNode] = []
        for i in range(topology.n):
            identity = NodeIdentity.from_private_bytes(key_rng.randbytes(32))
            self.nodes.append(
                SimNode(
                    slot=self.engine.drive(self._applier(i)),
                    index=i,
                    identity=identity,
                    public_key=identity.public_key,
                    prefix=prefix64_for_public_key(identity.public_key),
                    signer=XEdDSASigner(identity.private_bytes()),
                )
            )
        self.links: list[SimLink] = [
            SimLink(
                index=k,
                a=a,
                b=b,
                latency=lat,
                jitter=jitter,
                loss=loss,
                bandwidth_bps=bandwidth_bps,
                loss_mode=loss_mode,
            )
            for k, (a, b, lat) in enumerate(topology.edges)
        ]
        self.node_links: list[list[int]] = [[] for _ in range(topology.n)]
        for link in self.links:
            self.node_links[link.a].append(link.index)
            self.node_links[link.b].append(link.index)
        self.by_prefix = {node.prefix: node.index for node in self.nodes}
        self._open: dict[tuple[int, int], bool] = {}
        """(link, node) -> whether that node's end of the current connection is open."""

    # ----------------------------------------------------------------------------- clock

    @property
    def now(self) -> float:
        return self.engine.now

    def schedule(self, at: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` at simulated time ``at`` (not before the current time)."""
        self.engine.schedule(at, fn)

    def run_until(self, t_end: float) -> None:
        """Process every event up to and including ``t_end``; the clock ends at ``t_end``."""
        self.engine.run_until(t_end)

    def pending(self) -> int:
        return self.engine.pending()

    # ----------------------------------------------------------------------------- routers

    def _applier(self, index: int) -> Callable[[Iterable[Action]], None]:
        return lambda actions: self._apply(self.nodes[index], actions)

    def _apply(self, node: SimNode, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, SendControl):
                self._send(node, action.peer, action.payload)
            elif isinstance(action, NeighbourDead):  # RouteChange: the simulator keeps none
                self.stats.neighbour_dead += 1
                link_index = node.peers.get(action.peer)
                if link_index is not None:
                    self._close_end(self.links[link_index], node.index, tell_router=True)
                    self._maybe_tell_far_end(self.links[link_index], node.index)
                    self._maybe_redial(self.links[link_index])

    def _send(self, node: SimNode, peer: int, payload: bytes) -> None:
        link_index = node.peers.get(peer)
        if link_index is None:
            self.stats.dropped_no_link += 1
            return
        link = self.links[link_index]
        node.sent_messages += 1
        node.sent_bytes += len(payload) + FRAMING_OVERHEAD
        if not link.up:
            self.stats.dropped_in_flight += 1
            return
        arrival = link.transmit(node.index, len(payload), self.now, self.rng)
        if arrival is None:
            return
        epoch, sender = link.epoch, node.index
        self.schedule(arrival, lambda: self._deliver(link_index, epoch, sender, payload))

    def _deliver(self, link_index: int, epoch: int, sender: int, payload: bytes) -> None:
        link = self.links[link_index]
        receiver = link.other(sender)
        node = self.nodes[receiver]
        if (
            epoch != link.epoch
            or not link.up
            or node.router is None
            or not self._open.get((link_index, receiver), False)
        ):
            self.stats.dropped_in_flight += 1
            return
        self.stats.deliveries += 1
        node.slot.feed(node.router.handle_control(link.peer_at(receiver), payload, self.now))

    # ----------------------------------------------------------------------------- link layer

    def connect(self, link: SimLink) -> None:
        """Open a new connection on ``link`` if it is up and both nodes are alive."""
        a, b = self.nodes[link.a], self.nodes[link.b]
        if not (link.up and a.alive and b.alive):
            return
        if (
            link.connected
            and self._open.get((link.index, a.index))
            and self._open.get((link.index, b.index))
        ):
            return
        # A redial replaces whatever is left of the old connection at either end.
        for end in (a.index, b.index):
            self._close_end(link, end, tell_router=True)
        link.epoch += 1
        link.connected = True
        link.reset_queues()
        link.peer_a = a.next_peer_id
        a.next_peer_id += 1
        link.peer_b = b.next_peer_id
        b.next_peer_id += 1
        a.peers[link.peer_a] = link.index
        b.peers[link.peer_b] = link.index
        self._open[(link.index, a.index)] = True
        self._open[(link.index, b.index)] = True
        for node, peer in ((a, link.peer_a), (b, link.peer_b)):
            assert node.router is not None
            node.slot.feed(node.router.neighbour_up(peer, self.now))

    def _close_end(self, link: SimLink, end: int, *, tell_router: bool) -> None:
        if not self._open.get((link.index, end), False):
            return
        self._open[(link.index, end)] = False
        node = self.nodes[end]
        peer = link.peer_at(end)
        node.peers.pop(peer, None)
        if not (self._open.get((link.index, link.a)) or self._open.get((link.index, link.b))):
            link.connected = False
        if tell_router and node.router is not None:
            node.slot.feed(node.router.neighbour_down(peer, self.now))

    def _maybe_tell_far_end(self, link: SimLink, closer: int) -> None:
        """A closed connection reaches the far end one latency later, if the link carries it."""
        far = link.other(closer)
        epoch = link.epoch

        def fin() -> None:
            if link.epoch == epoch and link.up and self.nodes[far].alive:
                self._close_end(link, far, tell_router=True)
                self._maybe_redial(link)

        if link.up:
            self.schedule(self.now + link.latency, fin)

    def _maybe_redial(self, link: SimLink, delay: float = REDIAL_DELAY_S) -> None:
        epoch = link.epoch

        def redial() -> None:
            if link.epoch == epoch and not link.connected:
                self.connect(link)

        if link.up and self.nodes[link.a].alive and self.nodes[link.b].alive:
            self.schedule(self.now + delay + CONNECT_RTTS * 2 * link.latency, redial)

    def is_open(self, link: SimLink, node: int) -> bool:
        return self._open.get((link.index, node), False)

    def forward_target(self, node: int, peer: int | None) -> int | None:
        """The node a packet handed to ``peer`` at ``node`` reaches, or None if it is lost."""
        if peer is None:
            return None
        link_index = self.nodes[node].peers.get(peer)
        if link_index is None:
            return None
        link = self.links[link_index]
        far = link.other(node)
        if not link.up or not self.nodes[far].alive or not self._open.get((link_index, far)):
            return None
        return far

    # ----------------------------------------------------------------------------- scenario API

    def start_node(self, index: int, *, connect_jitter: float = 0.0) -> None:
        """Boot a router on ``index`` (a new router id suffix each time) and dial its links."""
        node = self.nodes[index]
        if node.alive:
            return
        node.starts += 1
        rng = random.Random(f"router-{self.seed}-{index}-{node.starts}")
        node.router = Router(
            node.public_key,
            node.signer,
            self.params,
            self.now,
            rng,
            verifier=self.verifier,
            router_id_suffix=rng.randbytes(8),
            announcement_pool=self.announcements,
        )
        node.alive = True
        self.version += 1
        node.slot.replace(node.router)
        for link_index in self.node_links[index]:
            link = self.links[link_index]
            far = link.other(index)
            if not (link.up and self.nodes[far].alive):
                continue
            delay = CONNECT_RTTS * 2 * link.latency
            if connect_jitter > 0:
                delay += self.rng.random() * connect_jitter
            self.schedule(self.now + delay, self._dialler(link))

    def _dialler(self, link: SimLink) -> Callable[[], None]:
        return lambda: self.connect(link)

    def kill_node(self, index: int) -> None:
        """Silent death: the node stops sending and receiving; nobody is told."""
        node = self.nodes[index]
        if not node.alive:
            return
        node.alive = False
        node.router = None
        node.slot.replace(None)
        self.version += 1
        for link_index in self.node_links[index]:
            self._close_end(self.links[link_index], index, tell_router=False)

    def fail_link(self, link: SimLink, *, silent: bool = True) -> None:
        """Take a link down. Silent: traffic stops, nobody is told. Otherwise both ends close."""
        if not link.up:
            return
        if not silent:
            for end in (link.a, link.b):
                self._close_end(link, end, tell_router=True)
        link.up = False
        self.version += 1

    def heal_link(self, link: SimLink) -> None:
        """Bring a link back up; a fresh connection is dialled unless the old one still works."""
        if link.up:
            return
        link.up = True
        self.version += 1
        if not (self.is_open(link, link.a) and self.is_open(link, link.b)):
            self._maybe_redial(link, delay=0.0)

    def set_latency(self, link: SimLink, latency: float) -> None:
        link.latency = latency
        self.version += 1

    # ----------------------------------------------------------------------------- views

    def alive_indices(self) -> list[int]:
        return [n.index for n in self.nodes if n.alive]

    def total_sent(self) -> tuple[int, int]:
        """(messages, bytes) sent by all nodes so far, bytes including framing."""
        return (
            sum(n.sent_messages for n in self.nodes),
            sum(n.sent_bytes for n in self.nodes),
        )
