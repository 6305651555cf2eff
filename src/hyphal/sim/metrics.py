"""Metrics over the simulator's state, measured against the true graph.

At a sample instant, for every destination ``d`` in the destination set (every alive node, or a
fixed random sample of them on large networks) the engine's forwarding is evaluated for every
alive source: ``next_hop(prefix(d))`` is asked of each router and mapped through the simulated
link to the node it reaches. That gives a functional graph per destination, which is resolved by
pointer doubling (numpy) in O(N log N): each source either reaches ``d``, ends at a node without
a usable route (a black hole), or enters a cycle (a forwarding loop). Path latency is summed
along the same pointers and compared with Dijkstra over the true link latencies (stretch).

Convergence of a node after an event is the first sample from which, until the next event, the
node has a working route to every sampled destination it can reach and its next hops for them
no longer change. The resolution is the sampling interval.
"""

from __future__ import annotations

import gc
import heapq
import sys
from dataclasses import dataclass, field
from types import FunctionType, ModuleType

import numpy as np
import numpy.typing as npt

from hyphal.sim.engine import Simulator

_SINK_LATENCY = 0.0
_MAX_PATH = 1 << 30


@dataclass
class Sample:
    """Network-wide state at one instant."""

    t: float
    alive: int
    pairs: int
    """Ordered (source, sampled destination) pairs connected in the true graph."""
    routed: int
    loops: int
    """Sources whose packets would circulate forever (must be zero)."""
    blackholes: int
    stale: int
    """(source, unreachable destination) pairs that still have a next hop."""
    reach_fraction: float
    stretch_p50: float | None = None
    stretch_p99: float | None = None
    stretch_max: float | None = None
    table_entries_max: int | None = None


@dataclass
class NodeState:
    """Per-node results of one sample: correctness and a fingerprint of its next hops."""

    correct: npt.NDArray[np.bool_]
    fingerprint: npt.NDArray[np.uint64]
    alive: npt.NDArray[np.bool_]


@dataclass
class Distances:
    """Dijkstra results for one graph version: ``dist[k][x]`` from node x to destination k."""

    version: int
    dests: list[int]
    dist: dict[int, npt.NDArray[np.float64]] = field(default_factory=dict)


def true_adjacency(sim: Simulator) -> list[list[tuple[int, float]]]:
    """Links that physically work between alive nodes, with their current latency."""
    adj: list[list[tuple[int, float]]] = [[] for _ in sim.nodes]
    for link in sim.links:
        if link.up and sim.nodes[link.a].alive and sim.nodes[link.b].alive:
            adj[link.a].append((link.b, link.latency))
            adj[link.b].append((link.a, link.latency))
    return adj


def component_labels(sim: Simulator, adj: list[list[tuple[int, float]]]) -> npt.NDArray[np.int64]:
    """Connected-component label per node in the true graph (-1 for dead nodes)."""
    labels = np.full(len(sim.nodes), -1, dtype=np.int64)
    for start in range(len(sim.nodes)):
        if labels[start] >= 0 or not sim.nodes[start].alive:
            continue
        labels[start] = start
        stack = [start]
        while stack:
            x = stack.pop()
            for y, _ in adj[x]:
                if labels[y] < 0:
                    labels[y] = start
                    stack.append(y)
    return labels


def dijkstra(adj: list[list[tuple[int, float]]], source: int) -> npt.NDArray[np.float64]:
    dist = [float("inf")] * len(adj)
    dist[source] = 0.0
    heap = [(0.0, source)]
    while heap:
        d, x = heapq.heappop(heap)
        if d > dist[x]:
            continue
        for y, w in adj[x]:
            nd = d + w
            if nd < dist[y]:
                dist[y] = nd
                heapq.heappush(heap, (nd, y))
    return np.array(dist, dtype=np.float64)


def percentile(values: npt.NDArray[np.float64] | list[float], q: float) -> float:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return float("nan")
    return float(np.percentile(arr, q, method="higher"))


class Meter:
    """Takes samples of a simulator; keeps the Dijkstra cache between samples."""

    def __init__(self, sim: Simulator, dest_sample: int | None, seed: int) -> None:
        self.sim = sim
        n = len(sim.nodes)
        rng = np.random.default_rng(seed)
        if dest_sample is None or dest_sample >= n:
            self.dests = list(range(n))
        else:
            self.dests = sorted(int(x) for x in rng.choice(n, size=dest_sample, replace=False))
        self._dist: Distances | None = None
        self._adj_version = -1
        self._adj: list[list[tuple[int, float]]] = []
        self._labels: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        table_sample = min(n, 32)
        self.table_nodes = sorted(int(x) for x in rng.choice(n, size=table_sample, replace=False))
        self.peak_table_entries = 0

    def _graph(self) -> tuple[list[list[tuple[int, float]]], npt.NDArray[np.int64]]:
        if self._adj_version != self.sim.version:
            self._adj = true_adjacency(self.sim)
            self._labels = component_labels(self.sim, self._adj)
            self._adj_version = self.sim.version
        return self._adj, self._labels

    def _distances(self, adj: list[list[tuple[int, float]]]) -> Distances:
        if self._dist is None or self._dist.version != self.sim.version:
            self._dist = Distances(self.sim.version, self.dests)
        return self._dist

    def sample(self, *, stretch: bool = False, tables: bool = False) -> tuple[Sample, NodeState]:
        sim = self.sim
        n = len(sim.nodes)
        adj, labels = self._graph()
        alive = labels >= 0
        sink = n
        steps = max(1, int(np.ceil(np.log2(n + 1))) + 1)
        correct = alive.copy()
        fingerprint = np.zeros(n, dtype=np.uint64)
        mult = np.uint64(1_000_003)
        # Per-node map peer id -> node reached, built once per sample.
        targets: list[dict[int, int]] = []
        routers = []
        for node in sim.nodes:
            tmap: dict[int, int] = {}
            if node.router is not None:
                for peer in node.peers:
                    far = sim.forward_target(node.index, peer)
                    if far is not None:
                        tmap[peer] = far
            targets.append(tmap)
            routers.append(node.router)
        alive_idx = [i for i in range(n) if alive[i]]
        pairs = routed = loops = blackholes = stale = 0
        stretches: list[npt.NDArray[np.float64]] = []
        dist_cache = self._distances(adj) if stretch else None
        lat_of: dict[tuple[int, int], float] = {}
        if stretch:
            for x in range(n):
                for y, w in adj[x]:
                    lat_of[(x, y)] = w
        nh = np.empty(n + 1, dtype=np.int64)
        nh[n] = sink
        lookups = [
            (routers[x].next_hop, targets[x].get)  # type: ignore[union-attr]
            for x in alive_idx
        ]
        alive_arr = np.array(alive_idx, dtype=np.int64)
        for d in self.dests:
            prefix = sim.nodes[d].prefix
            nh[:n] = sink
            if not alive[d]:
                stale += sum(1 for hop, _ in lookups if hop(prefix) is not None)
                continue
            if alive_arr.size:
                nh[alive_arr] = [get(hop(prefix), sink) for hop, get in lookups]  # type: ignore[arg-type]
            nh[d] = d
            reachable = labels == labels[d]
            reachable[d] = False
            fingerprint[:n] = fingerprint[:n] * mult + nh[:n].astype(np.uint64)
            final = nh.copy()
            lat = np.zeros(n + 1, dtype=np.float64)
            if stretch:
                for x in alive_idx:
                    y = int(nh[x])
                    if y != sink and x != d:
                        lat[x] = lat_of.get((x, y), 0.0)
            for _ in range(steps):
                if stretch:
                    lat = lat + lat[final]
                final = final[final]
            got = final[:n] == d
            got[d] = False
            in_loop = (final[:n] != d) & (final[:n] != sink) & alive
            in_loop[d] = False
            pairs += int(reachable.sum())
            ok = got & reachable
            routed += int(ok.sum())
            loops += int(in_loop.sum())
            blackholes += int((reachable & ~got & ~in_loop).sum())
            unreachable_routed = (~reachable) & alive & (nh[:n] != sink)
            unreachable_routed[d] = False
            stale += int(unreachable_routed.sum())
            correct &= ok | ~reachable
            if stretch and dist_cache is not None:
                dist = dist_cache.dist.get(d)
                if dist is None:
                    dist = dist_cache.dist[d] = dijkstra(adj, d)
                sel = ok & (dist > 0)
                if sel.any():
                    stretches.append(lat[:n][sel] / dist[sel])
        sample = Sample(
            t=sim.now,
            alive=len(alive_idx),
            pairs=pairs,
            routed=routed,
            loops=loops,
            blackholes=blackholes,
            stale=stale,
            reach_fraction=(routed / pairs) if pairs else 1.0,
        )
        if stretch and stretches:
            all_s = np.concatenate(stretches)
            sample.stretch_p50 = percentile(all_s, 50)
            sample.stretch_p99 = percentile(all_s, 99)
            sample.stretch_max = float(all_s.max())
        if tables:
            sample.table_entries_max = self.table_entries()
        return sample, NodeState(correct=correct, fingerprint=fingerprint, alive=alive)

    def table_entries(self) -> int:
        """Largest selected + fallback route count on the sampled nodes; updates the peak."""
        best = 0
        for i in self.table_nodes:
            router = self.sim.nodes[i].router
            if router is not None:
                best = max(best, len(router.selected_routes()) + len(router.fallback_routes()))
        self.peak_table_entries = max(self.peak_table_entries, best)
        return best


def convergence_times(
    event_time: float, states: list[tuple[float, NodeState]]
) -> tuple[npt.NDArray[np.float64], int]:
    """Per alive node, seconds from ``event_time`` until it is correct and stable for good.

    ``states`` are the samples from the event until the next one, in time order. Nodes that are
    not correct and stable at the last sample get ``inf``. Also returns how many nodes changed
    next hops at all in the window (the nodes the event affected).
    """
    if not states:
        return np.zeros(0), 0
    last_t, last = states[-1]
    n = last.correct.shape[0]
    settled = np.full(n, np.inf)
    ok = last.correct & last.alive
    settled[ok] = last_t
    fp = last.fingerprint
    still = ok.copy()
    changed = np.zeros(n, dtype=bool)
    for t, st in reversed(states[:-1]):
        same = st.correct & (st.fingerprint == fp)
        changed |= st.fingerprint != fp
        still &= same
        settled[still] = t
    # A node stable over the whole window settled at the event itself.
    first_t = states[0][0]
    settled[still & (settled == first_t)] = event_time
    result = settled[last.alive] - event_time
    return np.maximum(result, 0.0), int((changed & last.alive).sum())


def update_tlvs_sent(sim: Simulator) -> int:
    """Update TLVs (retractions included) the alive routers have sent, per neighbour."""
    total = 0
    for node in sim.nodes:
        if node.router is not None:
            c = node.router.counters
            total += c["updates_sent"] + c["retractions_sent"]
    return total


def update_tlvs_minimum(sim: Simulator) -> int:
    """The fewest update TLVs that give every router's usable neighbours its current table:
    per directed link, one update per prefix the sender originates or has selected, except
    towards that prefix's next hop (split horizon). What a cold start must send at least."""
    total = 0
    for node in sim.nodes:
        router = node.router
        if router is None:
            continue
        usable = {n.peer for n in router.neighbours() if n.alive}
        total += len(router.originated()) * len(usable)
        for route in router.selected_routes():
            total += len(usable) - (route.next_hop in usable)
    return total


_SKIP_TYPES = (type, ModuleType, FunctionType)


def deep_size(root: object, exclude: set[int]) -> int:
    """``sys.getsizeof`` summed over every object reachable from ``root`` (via gc referents).

    Objects whose id is in ``exclude`` (shared by all routers: parameters, the verifier, the
    announcement pool) are not entered, nor are classes, modules and functions. Small ints,
    interned bytes and pooled announcements shared with the rest of the process are counted, so
    this is what one router alone would hold, slightly more than its share of the process.
    """
    seen: set[int] = set(exclude)
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        oid = id(obj)
        if oid in seen or isinstance(obj, _SKIP_TYPES):
            continue
        seen.add(oid)
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def router_memory(sim: Simulator, nodes: list[int]) -> float:
    """Mean deep size in bytes of the routers on ``nodes`` (see :func:`deep_size`)."""
    # shared by every router; what a router's own tables point at in the pool is still counted
    exclude = {id(sim.params), id(sim.verifier), id(sim.verifier.__dict__)}
    if sim.announcements is not None:
        exclude |= {id(sim.announcements), id(sim.announcements.__dict__)}
    sizes = []
    for i in nodes:
        router = sim.nodes[i].router
        if router is not None:
            node = sim.nodes[i]
            sizes.append(deep_size(router, exclude | {id(node.signer)}))
    return float(np.mean(sizes)) if sizes else 0.0
