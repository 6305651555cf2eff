"""The on-demand routing prototype in the simulator: queries find routes, paths never loop,
state stays bounded, a dead relay is routed around, and the wire codec rejects garbage."""

from __future__ import annotations

import functools
import random

import pytest

from hyphal.sim import topologies
from hyphal.sim.ondemand import OnDemandParams
from hyphal.sim.ondemand_wire import (
    Hello,
    Query,
    Tlv,
    Update,
    decode,
    encode,
    encode_all,
)
from hyphal.sim.ondemandnet import OnDemandNet
from hyphal.wire.errors import DecodeError


def _net(n: int, *, landmarks: int | None = None, seed: int = 3, **kw: object) -> OnDemandNet:
    topo = topologies.build("geo", n, 3, seed)
    net = OnDemandNet(topo, seed=seed, landmarks=landmarks, params=OnDemandParams(**kw))  # type: ignore[arg-type]
    for i in range(n):
        net.start(i, jitter=0.3)
    net.run_until(5.0)
    return net


def _pairs(n: int, count: int, seed: int = 7) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    out: list[tuple[int, int]] = []
    while len(out) < count:
        s, d = rng.randrange(n), rng.randrange(n)
        if s != d:
            out.append((s, d))
    return out


@pytest.mark.parametrize("landmarks", [None, 0], ids=["landmark-lookup", "flood-only"])
def test_queries_find_loop_free_routes(landmarks: int | None) -> None:
    net = _net(80, landmarks=landmarks)
    pairs = _pairs(80, 60)
    checks: list[str] = []

    def check_all() -> None:
        checks.extend(net.walk(s, d)[0] for s, d in pairs)

    for k, (s, d) in enumerate(pairs):
        net.engine.schedule(5.0 + 0.05 * k, functools.partial(net.want, s, d))
    for t in range(10):  # loop check while routes are being acquired, not only at the end
        net.engine.schedule(5.0 + 0.4 * t, check_all)
    net.run_until(12.0)
    assert "loop" not in checks
    for s, d in pairs:
        assert (s, net.members[d].prefix) in net.acquired, (s, d)
        assert net.walk(s, d)[0] == "ok", (s, d)


def test_state_is_bounded_by_the_caps() -> None:
    # Tight caps: every member wants more destinations than it may hold on demand.
    net = _net(60, max_ondemand_prefixes=6, query_cache_max=16)
    for s in range(60):
        for d in random.Random(s).sample([x for x in range(60) if x != s], 10):
            net.want(s, d)
    net.run_until(12.0)
    for m in net.members:
        assert m.core is not None
        size = m.core.state_size()
        assert size["ondemandPrefixes"] <= 6
        assert size["pendingQueries"] <= 16
    refused = sum(m.core.counters.values.get("ondemand_full", 0) for m in net.members if m.core)
    assert refused > 0  # the cap was actually reached, so the bound above means something


def test_a_dead_relay_is_routed_around_without_loops() -> None:
    net = _net(80)
    pairs = _pairs(80, 60, seed=11)
    for s, d in pairs:
        net.want(s, d)
    net.run_until(9.0)
    through: dict[int, int] = {}
    for s, d in pairs:
        result, path = net.walk(s, d)
        assert result == "ok"
        for hop in path[1:-1]:
            through[hop] = through.get(hop, 0) + 1
    victim = max(through, key=lambda k: through[k])
    affected = [(s, d) for s, d in pairs if victim in net.walk(s, d)[1][1:-1]]
    assert affected
    net.kill(victim)
    for _ in range(150):
        net.run_until(net.now + 0.1)
        for s, d in affected:
            assert net.walk(s, d)[0] != "loop"
    for s, d in affected:
        assert net.walk(s, d)[0] == "ok", (s, d)


def test_codec_round_trips_and_rejects_garbage() -> None:
    update = Update(
        b"\x04" + bytes(7), 5, 120, 1, 3, 77, bytes(range(40)), 1_700_000_000, b"s" * 64
    )
    retraction = Update(b"\x04" + bytes(7), 5, 0xFFFF, 0, 0, 0, bytes(40))
    tlvs: list[Tlv] = [Hello(1, 25, 9), update, retraction, Query(9, b"\x04" + bytes(7), 3, 1, 8)]
    payload = encode_all(tlvs)
    assert decode(payload) == tlvs
    with pytest.raises(DecodeError):
        decode(payload[:-1])
    with pytest.raises(DecodeError):
        decode(encode(update)[:3] + encode(update)[3:-64])  # header claims more than is there
    bad_size = bytearray(encode(Query(1, bytes(8), 0, 0, 1)))
    bad_size[2] -= 1
    with pytest.raises(DecodeError):
        decode(bytes(bad_size[:-1]))
    assert decode(b"\x63\x00\x01x") == []  # unknown TLV types are skipped
