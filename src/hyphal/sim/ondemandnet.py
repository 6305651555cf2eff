"""Simulator adapter for the on-demand routing core: N :class:`OnDemandNode` on simulated links.

Plays the link layer on the shared :class:`~hyphal.sim.engine.Engine`, like
:class:`~hyphal.sim.engine.Simulator` does for the full-table router: every link end gets a fresh
peer id per connection, ``neighbour_up`` is called 1.5 RTT after dialling, payloads queue on
:class:`~hyphal.sim.links.SimLink` FIFOs (real byte sizes, serialisation and latency), a silent
death just stops traffic, and ``PeerDead`` closes that end. It also records when each interest
got its route (``acquired``) so a bench can measure time to first route, and it can follow next
hops from any node (``walk``) to check paths and loop freedom.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import NodeIdentity, prefix64_for_public_key
from hyphal.sim.engine import CONNECT_RTTS, Driven, Engine, MemoVerifier
from hyphal.sim.links import FRAMING_OVERHEAD, SimLink
from hyphal.sim.ondemand import (
    DEFAULT_ONDEMAND,
    Acquired,
    Action,
    OnDemandNode,
    OnDemandParams,
    PeerDead,
    Send,
    Unreachable,
)
from hyphal.sim.topologies import Topology

WALL_EPOCH = 1_700_000_000.0
"""Simulated wall clock at simulated time 0 (announcements carry Unix seconds)."""


@dataclass
class Member:
    index: int
    prefix: bytes
    public_key: bytes
    signer: XEdDSASigner
    slot: Driven[Action]
    core: OnDemandNode | None = None
    starts: int = 0
    peers: dict[int, int] = field(default_factory=dict)
    """Open link ends: peer id -> link index."""
    next_peer_id: int = 1
    sent_bytes: int = 0
    sent_messages: int = 0


class OnDemandNet:
    """A topology of on-demand routing cores driven by one simulated clock."""

    def __init__(
        self,
        topology: Topology,
        *,
        seed: int = 1,
        params: OnDemandParams = DEFAULT_ONDEMAND,
        landmarks: int | None = None,
    ) -> None:
        """``landmarks``: how many members act as landmarks (default round(sqrt(n)), 0: none,
        so queries are flooded rings only); chosen at random from the seed."""
        self.topology = topology
        self.params = params
        self.seed = seed
        self.engine = Engine(strict=True)
        self.rng = random.Random(f"ondemand-{seed}")
        self.verifier = MemoVerifier()
        key_rng = random.Random(f"keys-{seed}")
        self.members: list[Member] = []
        for i in range(topology.n):
            identity = NodeIdentity.from_private_bytes(key_rng.randbytes(32))
            self.members.append(
                Member(
                    index=i,
                    prefix=prefix64_for_public_key(identity.public_key),
                    public_key=identity.public_key,
                    signer=XEdDSASigner(identity.private_bytes()),
                    slot=self.engine.drive(self._applier(i)),
                )
            )
        self.by_prefix = {m.prefix: m.index for m in self.members}
        count = round(math.sqrt(topology.n)) if landmarks is None else landmarks
        self.landmarks = set(random.Random(f"landmarks-{seed}").sample(range(topology.n), count))
        self.links = [
            SimLink(index=k, a=a, b=b, latency=lat) for k, (a, b, lat) in enumerate(topology.edges)
        ]
        self.node_links: list[list[int]] = [[] for _ in range(topology.n)]
        for link in self.links:
            self.node_links[link.a].append(link.index)
            self.node_links[link.b].append(link.index)
        self._open: set[tuple[int, int]] = set()
        self.acquired: dict[tuple[int, bytes], float] = {}
        """(member, prefix) -> simulated time its interest last got a route."""
        self.unreachable: dict[tuple[int, bytes], float] = {}
        self.on_acquired: Callable[[int, bytes, float], None] | None = None

    @property
    def now(self) -> float:
        return self.engine.now

    def run_until(self, t: float) -> None:
        self.engine.run_until(t)

    def wall(self) -> float:
        return WALL_EPOCH + self.engine.now

    # ------------------------------------------------------------------ actions

    def _applier(self, index: int) -> Callable[[Iterable[Action]], None]:
        return lambda actions: self._apply(self.members[index], actions)

    def _apply(self, member: Member, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._send(member, action.peer, action.payload)
            elif isinstance(action, PeerDead):
                link_index = member.peers.get(action.peer)
                if link_index is not None:
                    self._close(self.links[link_index], member.index)
            elif isinstance(action, Acquired):
                self.acquired[(member.index, action.prefix)] = self.now
                if self.on_acquired is not None:
                    self.on_acquired(member.index, action.prefix, self.now)
            elif isinstance(action, Unreachable):
                self.unreachable[(member.index, action.prefix)] = self.now

    def _send(self, member: Member, peer: int, payload: bytes) -> None:
        link_index = member.peers.get(peer)
        if link_index is None:
            return
        link = self.links[link_index]
        member.sent_messages += 1
        member.sent_bytes += len(payload) + FRAMING_OVERHEAD
        if not link.up:
            return
        arrival = link.transmit(member.index, len(payload), self.now, self.rng)
        if arrival is None:
            return
        epoch, sender = link.epoch, member.index
        self.engine.schedule(arrival, lambda: self._deliver(link_index, epoch, sender, payload))

    def _deliver(self, link_index: int, epoch: int, sender: int, payload: bytes) -> None:
        link = self.links[link_index]
        receiver = link.other(sender)
        member = self.members[receiver]
        if epoch != link.epoch or member.core is None or (link_index, receiver) not in self._open:
            return
        member.slot.feed(member.core.handle(link.peer_at(receiver), payload, self.now))

    # ------------------------------------------------------------------ links

    def _connect(self, link: SimLink) -> None:
        a, b = self.members[link.a], self.members[link.b]
        if not (link.up and a.core is not None and b.core is not None):
            return
        for end in (a.index, b.index):
            self._close(link, end)
        link.epoch += 1
        link.reset_queues()
        link.peer_a, link.peer_b = a.next_peer_id, b.next_peer_id
        a.next_peer_id += 1
        b.next_peer_id += 1
        a.peers[link.peer_a] = link.index
        b.peers[link.peer_b] = link.index
        for member, peer in ((a, link.peer_a), (b, link.peer_b)):
            self._open.add((link.index, member.index))
            assert member.core is not None
            member.slot.feed(member.core.neighbour_up(peer, link.latency, self.now))

    def _close(self, link: SimLink, end: int) -> None:
        if (link.index, end) not in self._open:
            return
        self._open.discard((link.index, end))
        member = self.members[end]
        peer = link.peer_at(end)
        member.peers.pop(peer, None)
        if member.core is not None:
            member.slot.feed(member.core.neighbour_down(peer, self.now))

    # ------------------------------------------------------------------ scenario API

    def start(self, index: int, *, jitter: float = 0.0) -> None:
        """Boot ``index`` (a new router-id suffix each time) and dial its links."""
        member = self.members[index]
        if member.core is not None:
            return
        member.starts += 1
        rng = random.Random(f"ondemand-{self.seed}-{index}-{member.starts}")
        member.core = OnDemandNode(
            member.public_key,
            member.signer,
            self.params,
            self.now,
            rng,
            verifier=self.verifier,
            router_id_suffix=rng.randbytes(8),
            wall_clock=self.wall,
            landmark=index in self.landmarks,
        )
        member.slot.replace(member.core)
        for link_index in self.node_links[index]:
            link = self.links[link_index]
            if self.members[link.other(index)].core is None:
                continue
            delay = CONNECT_RTTS * 2 * link.latency + (self.rng.random() * jitter)
            self.engine.schedule(self.now + delay, functools.partial(self._connect, link))

    def kill(self, index: int) -> None:
        """Silent death: the member stops; its neighbours notice through missing hellos."""
        member = self.members[index]
        member.core = None
        member.slot.replace(None)
        for link_index in self.node_links[index]:
            self._open.discard((link_index, index))
        member.peers.clear()

    def want(self, index: int, dest: int) -> None:
        member = self.members[index]
        if member.core is not None:
            prefix = self.members[dest].prefix
            member.slot.feed(member.core.want(prefix, self.now))

    # ------------------------------------------------------------------ views

    def hop(self, index: int, prefix: bytes) -> int | None:
        """The member a packet for ``prefix`` at ``index`` is handed to, or None."""
        member = self.members[index]
        if member.core is None:
            return None
        peer = member.core.next_hop(prefix)
        if peer is None:
            return None
        link_index = member.peers.get(peer)
        if link_index is None:
            return None
        link = self.links[link_index]
        far = link.other(index)
        if not link.up or (link_index, far) not in self._open:
            return None
        return far

    def walk(self, index: int, dest: int, limit: int = 10_000) -> tuple[str, list[int]]:
        """Follow next hops from ``index`` towards ``dest``: ("ok"|"blackhole"|"loop", path)."""
        prefix = self.members[dest].prefix
        path = [index]
        seen = {index}
        node = index
        while node != dest and len(path) < limit:
            nxt = self.hop(node, prefix)
            if nxt is None:
                return "blackhole", path
            if nxt in seen:
                path.append(nxt)
                return "loop", path
            seen.add(nxt)
            path.append(nxt)
            node = nxt
        return ("ok" if node == dest else "loop"), path

    def alive(self) -> list[int]:
        return [m.index for m in self.members if m.core is not None]

    def sent_bytes(self) -> int:
        return sum(m.sent_bytes for m in self.members)
