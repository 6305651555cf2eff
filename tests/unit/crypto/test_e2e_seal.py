"""End-to-end seal/open: round trip, tamper, hop limit, replay, reordering, relays."""

from __future__ import annotations

import pytest

from hyphal.crypto import e2e as e2e_mod
from hyphal.crypto.e2e import E2ECrypto, E2EError
from hyphal.identity import NodeIdentity
from hyphal.wire import data as wire


@pytest.fixture
def nodes() -> tuple[E2ECrypto, E2ECrypto, E2ECrypto]:
    return (
        E2ECrypto(NodeIdentity.generate()),
        E2ECrypto(NodeIdentity.generate()),
        E2ECrypto(NodeIdentity.generate()),
    )


def test_round_trip_and_layout(nodes: tuple[E2ECrypto, E2ECrypto, E2ECrypto]) -> None:
    a, b, _ = nodes
    pkt = a.seal(b.public_key, wire.KIND_BUS, b"hello", hop_limit=7)
    assert len(pkt) == wire.HEADER_SIZE + 1 + 5 + 16
    assert wire.destination(pkt) == b.address
    assert wire.source_public_key(pkt) == a.public_key
    assert wire.session_id(pkt) == a.session_id
    assert wire.counter(pkt) == 0
    assert wire.hop_limit(pkt) == 7
    opened = b.open(pkt)
    assert opened.src_public_key == a.public_key
    assert opened.kind == wire.KIND_BUS
    assert bytes(opened.body) == b"hello"
    assert opened.hop_limit == 7
    # And the other way, with a memoryview body.
    assert bytes(a.open(b.seal(a.public_key, 0, memoryview(b"x" * 1400))).body) == b"x" * 1400


def test_every_authenticated_byte_is_protected(
    nodes: tuple[E2ECrypto, E2ECrypto, E2ECrypto],
) -> None:
    a, b, _ = nodes
    pkt = bytes(a.seal(b.public_key, wire.KIND_IPV6, b"payload"))
    for i in range(len(pkt)):
        if i == wire.OFF_HOP_LIMIT:
            continue
        bad = bytearray(pkt)
        bad[i] ^= 0x80
        with pytest.raises(E2EError) as info:
            b.open(bad)
        assert info.value.reason in {"bad-tag", "malformed", "not-for-us", "bad-key"}, i
    assert bytes(b.open(pkt).body) == b"payload"  # the untouched packet still opens


def test_hop_limit_change_does_not_break_authentication(
    nodes: tuple[E2ECrypto, E2ECrypto, E2ECrypto],
) -> None:
    a, b, _ = nodes
    pkt = a.seal(b.public_key, wire.KIND_IPV6, b"p", hop_limit=64)
    assert wire.decrement_hop_limit(pkt) == 63
    pkt[wire.OFF_HOP_LIMIT] = 3
    opened = b.open(pkt)
    assert opened.hop_limit == 3 and bytes(opened.body) == b"p"


def test_replay_rejected_and_reordering_accepted(
    nodes: tuple[E2ECrypto, E2ECrypto, E2ECrypto],
) -> None:
    a, b, _ = nodes
    pkts = [bytes(a.seal(b.public_key, 0, b"%d" % i)) for i in range(300)]
    b.open(pkts[0])
    with pytest.raises(E2EError) as info:
        b.open(pkts[0])
    assert info.value.reason == "replay"
    for p in reversed(pkts[1:]):
        b.open(p)
    for p in pkts:
        with pytest.raises(E2EError):
            b.open(p)


def test_relay_cannot_open(nodes: tuple[E2ECrypto, E2ECrypto, E2ECrypto]) -> None:
    a, b, relay = nodes
    pkt = a.seal(b.public_key, wire.KIND_IPV6, b"secret")
    with pytest.raises(E2EError) as info:
        relay.open(pkt)
    assert info.value.reason == "not-for-us"
    # Even if the relay rewrites the destination to itself, it has no key for this packet.
    forged = bytearray(pkt)
    forged[wire.OFF_DESTINATION : wire.OFF_DESTINATION + 16] = relay.address
    with pytest.raises(E2EError) as info:
        relay.open(forged)
    assert info.value.reason == "bad-tag"
    assert b"secret" not in bytes(pkt)


def test_forged_source_key_fails(nodes: tuple[E2ECrypto, E2ECrypto, E2ECrypto]) -> None:
    a, b, c = nodes
    pkt = bytearray(a.seal(b.public_key, 0, b"x"))
    pkt[wire.OFF_SOURCE_KEY : wire.OFF_SOURCE_KEY + 32] = c.public_key
    with pytest.raises(E2EError) as info:
        b.open(pkt)
    assert info.value.reason == "bad-tag"


def test_low_order_source_key_is_bad_key(nodes: tuple[E2ECrypto, E2ECrypto, E2ECrypto]) -> None:
    a, b, _ = nodes
    pkt = bytearray(a.seal(b.public_key, 0, b"x"))
    pkt[wire.OFF_SOURCE_KEY : wire.OFF_SOURCE_KEY + 32] = bytes(32)
    with pytest.raises(E2EError) as info:
        b.open(pkt)
    assert info.value.reason == "bad-key"
    with pytest.raises(E2EError):
        a.seal(bytes(32), 0, b"x")


def test_short_and_wrong_version(nodes: tuple[E2ECrypto, E2ECrypto, E2ECrypto]) -> None:
    _, b, _ = nodes
    for pkt in (b"", bytes(wire.MIN_PACKET_SIZE - 1)):
        with pytest.raises(E2EError) as info:
            b.open(pkt)
        assert info.value.reason == "malformed"
    bad = bytearray(wire.MIN_PACKET_SIZE)
    bad[0] = 2
    with pytest.raises(E2EError) as info:
        b.open(bad)
    assert info.value.reason == "malformed"


def test_session_rolls_after_limit(nodes: tuple[E2ECrypto, E2ECrypto, E2ECrypto]) -> None:
    a, b, _ = nodes
    first = a.session_id
    b.open(a.seal(b.public_key, 0, b"1"))
    a._counter = e2e_mod.SESSION_PACKETS - 1
    last = a.seal(b.public_key, 0, b"2")
    assert wire.session_id(last) == first and wire.counter(last) == e2e_mod.SESSION_PACKETS - 1
    nxt = a.seal(b.public_key, 0, b"3")
    assert wire.session_id(nxt) != first and wire.counter(nxt) == 0
    assert bytes(b.open(last).body) == b"2"
    assert bytes(b.open(nxt).body) == b"3"


def test_directions_and_sessions_use_distinct_keys() -> None:
    ia, ib = NodeIdentity.generate(), NodeIdentity.generate()
    shared = ia.shared_secret(ib.public_key)
    sid = bytes(8)
    k_ab = e2e_mod.derive_key(shared, sid, ia.public_key, ib.public_key)
    k_ba = e2e_mod.derive_key(shared, sid, ib.public_key, ia.public_key)
    k_ab2 = e2e_mod.derive_key(shared, b"\x01" * 8, ia.public_key, ib.public_key)
    assert len({k_ab, k_ba, k_ab2}) == 3


def test_session_lru_is_bounded() -> None:
    receiver = E2ECrypto(NodeIdentity.generate(), max_sessions=3, max_peers=2)
    senders = [E2ECrypto(NodeIdentity.generate()) for _ in range(6)]
    for s in senders:
        receiver.open(s.seal(receiver.public_key, 0, b"x"))
    assert len(receiver._rx) == 3 and len(receiver._shared) == 2
    # An unknown forgery is refused and creates no session.
    forged = bytearray(senders[-1].seal(receiver.public_key, 0, b"x"))
    forged[-1] ^= 1
    with pytest.raises(E2EError):
        receiver.open(forged)
    assert len(receiver._rx) == 3


def test_forged_sources_leave_no_cached_state() -> None:
    receiver = E2ECrypto(NodeIdentity.generate())
    for _ in range(50):
        forged = bytearray(
            E2ECrypto(NodeIdentity.generate()).seal(receiver.public_key, wire.KIND_BUS, b"x")
        )
        forged[-1] ^= 1
        with pytest.raises(E2EError) as refused:
            receiver.open(forged)
        assert refused.value.reason == "bad-tag"
    assert len(receiver._shared) == 0 and len(receiver._rx) == 0


def test_replay_after_flushing_the_session_lru_is_rejected() -> None:
    receiver = E2ECrypto(NodeIdentity.generate())
    sender = E2ECrypto(NodeIdentity.generate())
    recorded = sender.seal(receiver.public_key, wire.KIND_BUS, b"pay once")
    receiver.open(recorded)
    for _ in range(e2e_mod.DEFAULT_MAX_SESSIONS + 1):  # 4097 authentic packets, one per session
        flooder = E2ECrypto(NodeIdentity.generate())
        receiver.open(flooder.seal(receiver.public_key, wire.KIND_BUS, b"flood"))
    assert receiver._rx.get((sender.public_key, sender.session_id)) is None  # really evicted
    with pytest.raises(E2EError) as refused:
        receiver.open(recorded)
    assert refused.value.reason == "replay"
    # The sender's later packets in that session still open.
    later = sender.seal(receiver.public_key, wire.KIND_BUS, b"next")
    assert bytes(receiver.open(later).body) == b"next"


def test_deterministic_session_id_from_injected_rng() -> None:
    c = E2ECrypto(NodeIdentity.generate(), urandom=lambda n: b"\x42" * n)
    assert c.session_id == b"\x42" * 8
