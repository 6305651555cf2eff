"""Membership cores on the simulator's topologies and links, driven by the one engine.

Node ``i`` knows its neighbour ``j`` as peer id ``j``. Frames cross a :class:`SimLink` (FIFO per
direction, serialisation at the link's bandwidth, latency, optional jitter and loss), so byte
counts and queueing are those of the real link model. Each node runs the real
:class:`~hyphal.membership.gossip.MembershipCore` with its own key; signatures are checked
through the process-wide :class:`~hyphal.sim.engine.MemoVerifier`.

``warm_start`` puts the net in the steady state without simulating the first sync: every node
signs its record, one store verifies them all, and every other store takes a copy of its items
(shared objects, as the records are immutable); refreshes are spread uniformly over one refresh
interval, as they are in a net that has run for a while. ``track`` records when each node first
stores a given (origin, version), which is what the propagation numbers are made of.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import NodeIdentity
from hyphal.membership.admission import AdmissionPolicy
from hyphal.membership.gossip import Action, MemberEvent, MembershipCore, SendFrame
from hyphal.membership.params import DEFAULT_PARAMS, MembershipParams
from hyphal.membership.store import KIND_RECORD
from hyphal.sim.engine import Driven, Engine, MemoVerifier
from hyphal.sim.links import DEFAULT_BANDWIDTH_BPS, FRAMING_OVERHEAD, SimLink
from hyphal.sim.topologies import Topology

WALL_OFFSET = 1.8e9
NETWORK = b"sim"


class MemberNet:
    """One membership core per topology node, on simulated links."""

    def __init__(
        self,
        topology: Topology,
        *,
        seed: int = 1,
        params: MembershipParams = DEFAULT_PARAMS,
        jitter: float = 0.0,
        loss: float = 0.0,
        bandwidth_bps: float = DEFAULT_BANDWIDTH_BPS,
        policy: AdmissionPolicy | None = None,
        identities: list[NodeIdentity] | None = None,
    ) -> None:
        self.topology = topology
        self.params = params
        self.policy = policy
        self.rng = random.Random(f"members-{seed}")
        self.seed = seed
        self.engine = Engine()
        self.verifier = MemoVerifier()
        key_rng = random.Random(f"member-keys-{seed}")
        self.identities = identities or [
            NodeIdentity.from_private_bytes(key_rng.randbytes(32)) for _ in range(topology.n)
        ]
        self.signers = [XEdDSASigner(i.private_bytes()) for i in self.identities]
        self.cores: list[MembershipCore | None] = [None] * topology.n
        self.slots: list[Driven[Action]] = [
            self.engine.drive(self._applier(i)) for i in range(topology.n)
        ]
        self.links = {
            (min(a, b), max(a, b)): SimLink(
                index=k,
                a=a,
                b=b,
                latency=lat,
                jitter=jitter,
                loss=loss,
                bandwidth_bps=bandwidth_bps,
            )
            for k, (a, b, lat) in enumerate(topology.edges)
        }
        self.adjacent: list[list[int]] = [[] for _ in range(topology.n)]
        for a, b in self.links:
            self.adjacent[a].append(b)
            self.adjacent[b].append(a)
        self.up: set[tuple[int, int]] = set()
        self._epoch: dict[tuple[int, int], int] = dict.fromkeys(self.links, 0)
        self.events: list[tuple[float, int, MemberEvent]] = []
        self.keep_events = True
        self.sent_bytes = [0] * topology.n
        """Bytes each node sent, framing included."""
        self.received_bytes = [0] * topology.n
        self.admissions: dict[int, bytes] = {}
        """Node -> its admission (private networks): handed to its core at every start."""
        self.tracked: dict[tuple[bytes, int], dict[int, float]] = {}
        """(origin prefix, version) -> node -> time it was stored there."""

    @property
    def now(self) -> float:
        return self.engine.now

    # ------------------------------------------------------------------ building
    def make_core(self, i: int) -> MembershipCore:
        ident = self.identities[i]
        core = MembershipCore(
            ident.public_key,
            self.signers[i],
            self.verifier,
            NETWORK,
            self.now,
            wall_offset=WALL_OFFSET,
            rng=random.Random(f"core-{self.seed}-{i}"),
            params=self.params,
            policy=self.policy,
            own_admission=self.admissions.get(i),
        )
        core.store.observer = self._observer(i)
        return core

    def start(
        self, i: int, fields: dict[str, object] | None = None, *, connect: bool = True
    ) -> MembershipCore:
        """Boot node ``i`` with an empty store, publish its record and bring its links up."""
        core = self.make_core(i)
        self.cores[i] = core
        self.slots[i].replace(core)
        self.slots[i].feed(core.publish(self.now, **(fields or {"name": f"n{i}"})))
        if connect:
            for j in self.adjacent[i]:
                if self.cores[j] is not None:
                    self.link_up(i, j)
        return core

    def warm_start(self, fields: Callable[[int], dict[str, object]] | None = None) -> None:
        """Every node up, every store holding every record, every link up (see module doc)."""
        n = self.topology.n
        for i in range(n):
            fresh = self.make_core(i)
            self.cores[i] = fresh
            fresh.publish(self.now, **(fields(i) if fields else {"name": f"n{i}"}))
        base = self.cores[0]
        assert base is not None
        wall = base.wall(self.now)
        for i in range(1, n):
            other = self.cores[i]
            assert other is not None and other.own_record is not None
            base.store.ingest(KIND_RECORD, other.own_record.encode(), wall, self.now)
        interval = self.params.record_ttl_s * self.params.refresh_fraction
        for i in range(n):
            core = self.cores[i]
            assert core is not None
            if i:
                observer = core.store.observer
                core.store.observer = None
                core.store.clone_from(base.store)
                core.store.observer = observer
            core.store.settle()
            core.schedule_refresh(self.now + self.rng.random() * interval)
            self.slots[i].replace(core)
        for a, b in self.links:
            self.link_up(a, b)

    # ------------------------------------------------------------------ links
    def link_up(self, a: int, b: int) -> None:
        key = (min(a, b), max(a, b))
        if key in self.up or self.cores[a] is None or self.cores[b] is None:
            return
        self.up.add(key)
        self._epoch[key] += 1
        self.links[key].reset_queues()
        for x, y in ((a, b), (b, a)):
            core = self.cores[x]
            assert core is not None
            self.slots[x].feed(core.neighbour_up(y, self.now))

    def link_down(self, a: int, b: int) -> None:
        key = (min(a, b), max(a, b))
        if key not in self.up:
            return
        self.up.discard(key)
        self._epoch[key] += 1
        for x, y in ((a, b), (b, a)):
            core = self.cores[x]
            if core is not None:
                self.slots[x].feed(core.neighbour_down(y, self.now))

    def stop(self, i: int) -> None:
        """Node ``i`` is gone (its links close; its record stays until it expires)."""
        for j in self.adjacent[i]:
            self.link_down(i, j)
        self.cores[i] = None
        self.slots[i].replace(None)

    # ------------------------------------------------------------------ running
    def _observer(self, i: int) -> Callable[[int, bytes, int], None]:
        def seen(kind: int, item_id: bytes, version: int) -> None:
            arrivals = self.tracked.get((item_id, version))
            if arrivals is not None and i not in arrivals:
                arrivals[i] = self.now

        return seen

    def track(self, i: int) -> tuple[bytes, int]:
        """Start timing the current record of node ``i`` (call right after publishing it)."""
        core = self.cores[i]
        assert core is not None and core.own_record is not None
        key = (core.prefix, core.own_record.version)
        self.tracked.setdefault(key, {})[i] = self.now
        return key

    def publish(self, i: int, *, track: bool = True, **fields: object) -> tuple[bytes, int]:
        core = self.cores[i]
        assert core is not None
        self.slots[i].feed(core.publish(self.now, **fields))
        return self.track(i) if track else (core.prefix, 0)

    def leave(self, i: int) -> tuple[bytes, int]:
        core = self.cores[i]
        assert core is not None
        self.slots[i].feed(core.leave(self.now))
        return self.track(i)

    def _applier(self, src: int) -> Callable[[Iterable[Action]], None]:
        return lambda actions: self._apply(src, actions)

    def _apply(self, src: int, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, SendFrame):
                self._send(src, action.peer, action.body)
            elif self.keep_events:
                self.events.append((self.now, src, action))

    def _send(self, src: int, dst: int, body: bytes) -> None:
        key = (min(src, dst), max(src, dst))
        if key not in self.up:
            return
        self.sent_bytes[src] += len(body) + FRAMING_OVERHEAD
        arrival = self.links[key].transmit(src, len(body), self.now, self.rng)
        if arrival is None:
            return
        epoch = self._epoch[key]
        self.engine.schedule(arrival, lambda: self._deliver(src, dst, body, epoch))

    def _deliver(self, src: int, dst: int, body: bytes, epoch: int) -> None:
        key = (min(src, dst), max(src, dst))
        core = self.cores[dst]
        if self._epoch[key] != epoch or key not in self.up or core is None:
            return
        self.received_bytes[dst] += len(body) + FRAMING_OVERHEAD
        self.slots[dst].feed(core.handle_frame(src, body, self.now))

    def run_until(self, t: float) -> None:
        self.engine.run_until(t)

    def run_for(self, dt: float) -> None:
        self.engine.run_until(self.now + dt)

    # ------------------------------------------------------------------ inspection
    def alive(self) -> list[int]:
        return [i for i, c in enumerate(self.cores) if c is not None]

    def components(self) -> list[list[int]]:
        """Live nodes grouped by the links that are up (a stopped node can cut the graph)."""
        seen: set[int] = set()
        groups = []
        for start in self.alive():
            if start in seen:
                continue
            seen.add(start)
            group, stack = [], [start]
            while stack:
                x = stack.pop()
                group.append(x)
                for y in self.adjacent[x]:
                    if y not in seen and (min(x, y), max(x, y)) in self.up:
                        seen.add(y)
                        stack.append(y)
            groups.append(sorted(group))
        return groups

    def converged(self) -> bool:
        """Within each connected group of live nodes, every store holds the same items."""
        for group in self.components():
            sums = set()
            for i in group:
                core = self.cores[i]
                assert core is not None
                sums.add(core.store.exact_summary())
            if len(sums) > 1:
                return False
        return True
