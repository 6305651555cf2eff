"""Messages to a destination that is not reachable now (Mycelium's behaviour): accepted, retried
until the deadline, then failed with a reason. The real MessageCore on BusNet's fake clock."""

from __future__ import annotations

from ipaddress import IPv6Address
from pathlib import Path

import pytest

from hyphal.bus.core import BusError, Limits, MessageCore, OutboxFull, SendPacket
from hyphal.bus.store import MessageStore
from hyphal.identity import address_bytes_for_public_key, prefix64_for_public_key
from hyphal.sim.busnet import BusNet, node_key
from hyphal.wire import bus as wire

A, B, C = node_key(1), node_key(2), node_key(3)
B_ADDR = address_bytes_for_public_key(B)
B_PREFIX = prefix64_for_public_key(B)


def nobody(prefix: bytes) -> bytes | None:
    return None


def b_is_routed(prefix: bytes) -> bytes | None:
    return B if prefix == B_PREFIX else None


def sends(actions: list[object]) -> list[wire.BusPacket]:
    return [wire.decode(a.body) for a in actions if isinstance(a, SendPacket)]


def pair(limits: Limits | None = None) -> tuple[BusNet, MessageCore, MessageCore]:
    net = BusNet()
    return net, net.add(1, limits=limits), net.add(2)


def test_address_without_owner_waits_then_is_delivered_when_a_route_appears() -> None:
    net, a, b = pair()
    msg_id, actions = a.send(B_ADDR, b"later", net.now, deadline=120)
    assert sends(actions) == []  # nothing can be sealed without the owner's key
    st = a.status(msg_id)
    assert st is not None and st.state == "pending" and st.dst_pk is None
    assert st.dst_ip == B_ADDR
    assert st.reason is not None and "no node owning" in st.reason
    assert a.memory_usage()["waiting_messages"] == 1
    net.now += 30
    assert a.check_routes(nobody, net.now) == []
    actions = a.check_routes(b_is_routed, net.now)
    (init,) = sends(actions)
    assert isinstance(init, wire.Init) and init.msg_id == msg_id
    assert 85 <= init.lifetime <= 90  # the deadline still counts from the send
    net.run(A, actions)
    assert net.run_until(lambda: a.status(msg_id).state == "received", max_time=10)  # type: ignore[union-attr]
    st = a.status(msg_id)
    assert st is not None and st.dst_pk == B and st.reason is None
    message, _ = b.pop(net.now)
    assert message is not None and message.payload == b"later" and message.src_pk == A
    assert a.memory_usage()["waiting_messages"] == 0
    assert not a.watching


def test_address_without_owner_fails_at_the_deadline_with_a_reason() -> None:
    net, a, _ = pair()
    msg_id, _ = a.send(B_ADDR, b"never", net.now, deadline=20)
    assert net.run_until(lambda: a.status(msg_id).state == "aborted", max_time=60)  # type: ignore[union-attr]
    st = a.status(msg_id)
    assert st is not None
    assert st.reason == f"deadline passed: no node owning {IPv6Address(B_ADDR)} became reachable"
    assert 19 <= net.now - 1000 <= 21
    usage = a.memory_usage()
    assert usage["waiting_messages"] == usage["waiting_destinations"] == usage["outbox_bytes"] == 0
    assert a.check_routes(b_is_routed, net.now) == []  # a route after the deadline changes nothing


def test_waiting_is_bounded_per_destination_and_in_destinations() -> None:
    limits = Limits(max_waiting_per_destination=2, max_waiting_destinations=2)
    net, a, _ = pair(limits)
    a.send(B_ADDR, b"1", net.now)
    a.send(B_ADDR[:8] + bytes(7) + b"\x09", b"2", net.now)  # another address in B's /64
    with pytest.raises(OutboxFull, match="wait for a route to this /64"):
        a.send(B_ADDR, b"3", net.now)
    a.send(address_bytes_for_public_key(C), b"c", net.now)
    with pytest.raises(OutboxFull, match="unreachable destinations"):
        a.send(address_bytes_for_public_key(node_key(4)), b"d", net.now)
    with pytest.raises(BusError, match="not an overlay address"):
        a.send(bytes.fromhex("20010db8000000000000000000000001"), b"x", net.now)
    with pytest.raises(BusError, match="itself"):
        a.send(address_bytes_for_public_key(A), b"x", net.now)


def test_a_lookup_naming_a_key_that_does_not_own_the_prefix_is_ignored() -> None:
    net, a, _ = pair()
    msg_id, _ = a.send(B_ADDR, b"x", net.now)
    assert a.check_routes(lambda prefix: C, net.now) == []
    st = a.status(msg_id)
    assert st is not None and st.state == "pending" and st.dst_pk is None


def test_stalled_init_is_resent_as_soon_as_the_route_comes_back() -> None:
    net, a, _ = pair()
    net.down.add(B)
    msg_id = net.send(1, 2, b"to a key", deadline=900)
    # Long enough for the retransmission timer to back off to tens of seconds.
    net.run_until(lambda: net.now >= 1200, max_time=200)
    assert a.watching
    assert a.check_routes(nobody, net.now) == []  # B's route is gone while it is down
    net.down.discard(B)
    start = net.now
    actions = a.check_routes(b_is_routed, net.now)
    assert [type(p) for p in sends(actions)] == [wire.Init]
    net.run(A, actions)
    assert net.run_until(lambda: a.status(msg_id).state == "received", max_time=5)  # type: ignore[union-attr]
    assert net.now - start < 1.0  # not the backed-off RTO (32 s or more by now)
    assert a.check_routes(b_is_routed, net.now) == []


def test_a_route_that_stays_does_not_resend_init_on_every_check() -> None:
    net, a, _ = pair()
    net.down.add(B)
    net.send(1, 2, b"x", deadline=900)
    net.run_until(lambda: net.now >= 1100, max_time=100)
    first = a.check_routes(b_is_routed, net.now)  # a route seen for the first time: one kick
    assert len(sends(first)) == 1
    for _ in range(5):
        assert a.check_routes(b_is_routed, net.now) == []


def test_a_waiting_message_survives_a_restart(tmp_path: Path) -> None:
    net = BusNet()
    a = net.add(1, store=MessageStore(tmp_path))
    b = net.add(2)
    msg_id, actions = a.send(B_ADDR, b"stored", net.now, deadline=300)
    for action in actions:
        assert not isinstance(action, SendPacket)
    assert a.store is not None
    a.store.close()
    net.now += 10
    a = net.add(1, store=MessageStore(tmp_path))
    net.run(A, a.start(net.now))
    st = a.status(msg_id)
    assert st is not None and st.state == "pending" and st.dst_ip == B_ADDR
    net.run(A, a.check_routes(b_is_routed, net.now))
    assert net.run_until(lambda: a.status(msg_id).state == "received", max_time=10)  # type: ignore[union-attr]
    message, _ = b.pop(net.now)
    assert message is not None and message.payload == b"stored"
