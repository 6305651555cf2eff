"""Topology generators: connected, deterministic, sane latencies; the file format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyphal.sim import topologies
from hyphal.sim.topologies import TopologyError


def test_city_table_is_sane() -> None:
    cities = topologies.load_cities()
    assert 150 <= len(cities) <= 300
    assert all(-90 <= c.lat <= 90 and -180 <= c.lon <= 180 for c in cities)


def test_great_circle_known_distance() -> None:
    # London - New York is about 5570 km.
    km = topologies.great_circle_km(51.51, -0.13, 40.71, -74.01)
    assert 5500 < km < 5650


@pytest.mark.parametrize("kind", ["geo", "random", "ring", "grid"])
@pytest.mark.parametrize("n", [10, 77, 300])
def test_generators_connected_and_deterministic(kind: str, n: int) -> None:
    a = topologies.build(kind, n, 4, seed=5)
    b = topologies.build(kind, n, 4, seed=5)
    assert a.edges == b.edges
    assert a.n == n and a.is_connected()
    assert all(0 <= x < n and 0 <= y < n and x != y and lat > 0 for x, y, lat in a.edges)
    assert len({(x, y) for x, y, _ in a.edges}) == len(a.edges)


def test_geo_latency_is_propagation_plus_overhead() -> None:
    top = topologies.geo(200, 4, seed=2)
    for a, b, lat in top.edges:
        expected = topologies.geo_latency(top.positions[a], top.positions[b])
        assert lat == pytest.approx(expected)
        assert lat >= topologies.GEO_LINK_OVERHEAD_S
        assert lat < 0.1002 + topologies.GEO_LINK_OVERHEAD_S  # half the earth's circumference


def test_file_topology(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps(
            {"nodes": 4, "edges": [[0, 1, 5], {"a": 1, "b": 2, "latency_ms": 7}, [2, 3, 1.5]]}
        )
    )
    top = topologies.load_file(path)
    assert top.n == 4
    assert top.edges == [(0, 1, 0.005), (1, 2, 0.007), (2, 3, 0.0015)]
    path.write_text(json.dumps({"edges": [[0, 0, 5]]}))
    with pytest.raises(TopologyError):
        topologies.load_file(path)
