"""Topology generators for the simulator: which nodes are linked and each link's one-way latency.

A :class:`Topology` is a node count plus an undirected edge list with true one-way latencies in
seconds. Generators:

* ``geo``: nodes sit on real cities (``data/cities.csv``) with small random offsets; a link's
  latency is the great-circle distance over two thirds of the speed of light plus a per-link
  overhead. Each node peers with its ``degree`` nearest nodes and, with some probability, one
  random long-distance node; components are then joined by their closest pairs.
* ``random``: a random ``degree``-regular graph (pairing model, retried until simple and
  connected), latencies uniform in 5..50 ms.
* ``ring`` and ``grid``: 10 ms per link.
* ``file``: a JSON edge list, see :func:`load_file`.

Every generator is a pure function of its arguments and ``seed``.
"""

from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

SPEED_IN_FIBRE_KM_S = 299_792.458 * 2.0 / 3.0
EARTH_RADIUS_KM = 6371.0
GEO_LINK_OVERHEAD_S = 0.002
"""Per-link latency added to the propagation delay (switching, last mile, indirect fibre)."""
GEO_OFFSET_KM = 40.0
GEO_LONG_LINK_PROBABILITY = 0.1


class TopologyError(ValueError):
    """A topology that cannot be built or read, with a message for the user."""


@dataclass(frozen=True)
class City:
    name: str
    country: str
    lat: float
    lon: float


@dataclass
class Topology:
    """Nodes ``0..n-1`` and undirected links ``(a, b, one-way latency in seconds)``."""

    name: str
    n: int
    edges: list[tuple[int, int, float]]
    labels: list[str] = field(default_factory=list)
    positions: list[tuple[float, float]] = field(default_factory=list)
    """(lat, lon) per node for ``geo``; empty otherwise."""

    def adjacency(self) -> list[dict[int, float]]:
        adj: list[dict[int, float]] = [{} for _ in range(self.n)]
        for a, b, lat in self.edges:
            adj[a][b] = lat
            adj[b][a] = lat
        return adj

    def is_connected(self) -> bool:
        return len(components(self.n, self.edges)) <= 1


def components(n: int, edges: list[tuple[int, int, float]]) -> list[list[int]]:
    """Connected components (each sorted), largest first."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, _ in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    groups: dict[int, list[int]] = {}
    for x in range(n):
        groups.setdefault(find(x), []).append(x)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def load_cities() -> list[City]:
    """The packaged table of world cities."""
    text = resources.files("hyphal.sim").joinpath("data/cities.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return [City(r["city"], r["country"], float(r["lat"]), float(r["lon"])) for r in rows]


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def geo_latency(a: tuple[float, float], b: tuple[float, float]) -> float:
    """One-way latency in seconds between two (lat, lon) points."""
    return great_circle_km(a[0], a[1], b[0], b[1]) / SPEED_IN_FIBRE_KM_S + GEO_LINK_OVERHEAD_S


def geo(n: int, degree: int, seed: int) -> Topology:
    """Nodes on real cities; ``degree`` nearest peers each plus a few random long links."""
    if n < 2:
        raise TopologyError("a topology needs at least 2 nodes")
    rng = random.Random(seed)
    cities = load_cities()
    order = list(range(len(cities)))
    rng.shuffle(order)
    positions: list[tuple[float, float]] = []
    labels: list[str] = []
    for i in range(n):
        city = cities[order[i % len(cities)]]
        # Uniform offset in a disc of GEO_OFFSET_KM around the city centre.
        r_km = GEO_OFFSET_KM * math.sqrt(rng.random())
        theta = rng.uniform(0, 2 * math.pi)
        dlat = (r_km * math.cos(theta)) / 111.0
        dlon = (r_km * math.sin(theta)) / (111.0 * max(0.1, math.cos(math.radians(city.lat))))
        positions.append((city.lat + dlat, ((city.lon + dlon + 180.0) % 360.0) - 180.0))
        labels.append(f"{city.name}-{i}")
    # Unit vectors make nearest-neighbour search a dot-product ranking.
    lat_r = np.radians(np.array([p[0] for p in positions]))
    lon_r = np.radians(np.array([p[1] for p in positions]))
    vecs = np.stack(
        [np.cos(lat_r) * np.cos(lon_r), np.cos(lat_r) * np.sin(lon_r), np.sin(lat_r)], axis=1
    )
    city_of = np.array([order[i % len(cities)] for i in range(n)])
    edge_set: set[tuple[int, int]] = set()
    k = min(degree, n - 1)
    k_near = max(1, (k + 1) // 2)
    for i in range(n):
        sims = vecs @ vecs[i]
        sims[i] = -2.0
        picks = [int(x) for x in np.argsort(-sims)[:k_near]]
        # The rest of the degree goes to the nearest nodes in other cities, so that a city's
        # nodes do not form an island reached through a single link.
        sims[city_of == city_of[i]] = -2.0
        sims[picks] = -2.0
        far = [int(x) for x in np.argsort(-sims)[: k - k_near] if sims[x] > -2.0]
        for j in picks + far:
            edge_set.add((min(i, j), max(i, j)))
        if n > k + 2 and rng.random() < GEO_LONG_LINK_PROBABILITY:
            j = rng.randrange(n)
            if j != i:
                edge_set.add((min(i, j), max(i, j)))
    edges = [(a, b, geo_latency(positions[a], positions[b])) for a, b in sorted(edge_set)]
    # Join components by their closest pair until connected.
    while True:
        comps = components(n, edges)
        if len(comps) == 1:
            break
        main, other = np.array(comps[0]), np.array(comps[1])
        dots = vecs[main] @ vecs[other].T
        flat = int(np.argmax(dots))
        a, b = int(main[flat // len(other)]), int(other[flat % len(other)])
        edges.append((min(a, b), max(a, b), geo_latency(positions[a], positions[b])))
    return Topology("geo", n, edges, labels, positions)


def random_regular(n: int, degree: int, seed: int) -> Topology:
    """A connected random ``degree``-regular graph (pairing model with restarts)."""
    if n < 3:
        raise TopologyError("a random regular graph needs at least 3 nodes")
    d = min(degree, n - 1)
    if (n * d) % 2:
        d -= 1
    if d < 2:
        raise TopologyError("degree must be at least 2")
    rng = random.Random(seed)
    for _ in range(1000):
        stubs = [i for i in range(n) for _ in range(d)]
        rng.shuffle(stubs)
        pairs = set()
        ok = True
        for i in range(0, len(stubs), 2):
            a, b = stubs[i], stubs[i + 1]
            key = (min(a, b), max(a, b))
            if a == b or key in pairs:
                ok = False
                break
            pairs.add(key)
        if not ok:
            continue
        edges = [(a, b, rng.uniform(0.005, 0.050)) for a, b in sorted(pairs)]
        if len(components(n, edges)) == 1:
            return Topology("random", n, edges, [str(i) for i in range(n)])
    # High degrees rarely pair cleanly in one shuffle (a clean pairing has probability about
    # exp(-(d*d - 1) / 4)): pair stubs one at a time instead, drawing only pairs that keep the
    # graph simple (Steger-Wormald), and restart only if the last stubs cannot be paired.
    for _ in range(1000):
        paired = _pair_stubs(n, d, rng)
        if paired is None:
            continue
        edges = [(a, b, rng.uniform(0.005, 0.050)) for a, b in sorted(paired)]
        if len(components(n, edges)) == 1:
            return Topology("random", n, edges, [str(i) for i in range(n)])
    raise TopologyError(f"could not build a simple connected {d}-regular graph on {n} nodes")


def _pair_stubs(n: int, d: int, rng: random.Random) -> set[tuple[int, int]] | None:
    stubs = [i for i in range(n) for _ in range(d)]
    pairs: set[tuple[int, int]] = set()
    while stubs:
        for _ in range(100):
            i, j = rng.randrange(len(stubs)), rng.randrange(len(stubs))
            a, b = stubs[i], stubs[j]
            key = (min(a, b), max(a, b))
            if a != b and key not in pairs:
                break
        else:
            return None
        pairs.add(key)
        for k in sorted((i, j), reverse=True):
            stubs[k] = stubs[-1]
            stubs.pop()
    return pairs


def ring(n: int, seed: int = 0) -> Topology:
    if n < 3:
        raise TopologyError("a ring needs at least 3 nodes")
    edges = [(i, (i + 1) % n, 0.010) for i in range(n)]
    edges = [(min(a, b), max(a, b), lat) for a, b, lat in edges]
    return Topology("ring", n, edges, [str(i) for i in range(n)])


def grid(n: int, seed: int = 0) -> Topology:
    """The first ``n`` cells of a near-square grid, row by row, 10 ms per link."""
    if n < 2:
        raise TopologyError("a grid needs at least 2 nodes")
    width = max(1, math.ceil(math.sqrt(n)))
    edges: list[tuple[int, int, float]] = []
    for i in range(n):
        if (i + 1) % width and i + 1 < n:
            edges.append((i, i + 1, 0.010))
        if i + width < n:
            edges.append((i, i + width, 0.010))
    return Topology("grid", n, edges, [f"{i // width},{i % width}" for i in range(n)])


def load_file(path: Path) -> Topology:
    """Read a JSON topology.

    Accepted forms: ``{"nodes": N, "edges": [[a, b, latency_ms], ...]}`` or edges as objects
    ``{"a": 0, "b": 1, "latency_ms": 12.5}``; ``nodes`` defaults to the largest id plus one.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TopologyError(f"cannot read topology file {path}: {exc}") from exc
    raw_edges = doc.get("edges") if isinstance(doc, dict) else doc
    if not isinstance(raw_edges, list) or not raw_edges:
        raise TopologyError(f"{path}: expected a non-empty 'edges' list")
    edges: list[tuple[int, int, float]] = []
    seen: set[tuple[int, int]] = set()
    for item in raw_edges:
        try:
            if isinstance(item, dict):
                a, b, ms = int(item["a"]), int(item["b"]), float(item["latency_ms"])
            else:
                a, b, ms = int(item[0]), int(item[1]), float(item[2])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise TopologyError(f"{path}: bad edge {item!r}") from exc
        if a == b or a < 0 or b < 0 or ms <= 0:
            raise TopologyError(f"{path}: bad edge {item!r}")
        key = (min(a, b), max(a, b))
        if key not in seen:
            seen.add(key)
            edges.append((key[0], key[1], ms / 1000.0))
    top = max(max(a, b) for a, b, _ in edges) + 1
    n = int(doc.get("nodes", top)) if isinstance(doc, dict) else top
    if n < top:
        raise TopologyError(f"{path}: 'nodes' is {n} but an edge names node {top - 1}")
    labels = doc.get("labels") if isinstance(doc, dict) else None
    names = [str(x) for x in labels] if isinstance(labels, list) and len(labels) == n else []
    return Topology("file", n, edges, names or [str(i) for i in range(n)])


TOPOLOGIES = ("geo", "random", "ring", "grid", "file")


def build(kind: str, n: int, degree: int, seed: int, path: Path | None = None) -> Topology:
    """Build a topology by name."""
    if kind == "geo":
        return geo(n, degree, seed)
    if kind == "random":
        return random_regular(n, degree, seed)
    if kind == "ring":
        return ring(n)
    if kind == "grid":
        return grid(n)
    if kind == "file":
        if path is None:
            raise TopologyError("topology 'file' needs --topology-file")
        return load_file(path)
    raise TopologyError(f"unknown topology {kind!r}; choose one of {', '.join(TOPOLOGIES)}")
