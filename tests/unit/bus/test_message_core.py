"""MessageCore end to end on the engine's BusNet: a lossy, reordering channel and a fake clock."""

from __future__ import annotations

import os
import random
from ipaddress import IPv6Network
from pathlib import Path

import pytest

from hyphal.bus.core import (
    BusError,
    Limits,
    MessageCore,
    MessageTooLarge,
    OutboxFull,
    SendPacket,
    UnknownMessage,
)
from hyphal.bus.store import MessageStore
from hyphal.identity import subnet_for_public_key
from hyphal.sim.busnet import BusNet, node_key
from hyphal.wire import bus as wire

A, B, C = node_key(1), node_key(2), node_key(3)


def pair(**kw: object) -> tuple[BusNet, MessageCore, MessageCore]:
    net = BusNet(**kw)  # type: ignore[arg-type]
    return net, net.add(1), net.add(2)


def state(core: MessageCore, msg_id: bytes) -> str:
    st = core.status(msg_id)
    assert st is not None
    return st.state


@pytest.mark.parametrize("size", [0, 1, 16 * 1024, 16 * 1024 + 1, 1024 * 1024])
def test_round_trip_sizes(size: int) -> None:
    net, a, b = pair()
    payload = os.urandom(size)
    msg_id = net.send(1, 2, payload, topic=b"t")
    assert net.run_until(lambda: state(a, msg_id) == "received")
    msg, _ = b.pop(net.now)
    assert msg is not None and msg.payload == payload and msg.topic == b"t"
    assert msg.src_pk == A and msg.dst_pk == B and msg.msg_id == msg_id


def test_ten_megabytes_with_loss_and_reordering() -> None:
    net, a, b = pair(loss=0.05, jitter=0.03, seed=7)
    payload = random.Random(3).randbytes(10 * 1024 * 1024)
    msg_id = net.send(1, 2, payload, deadline=3600)
    assert net.run_until(lambda: state(a, msg_id) == "received", max_time=3000)
    msg, _ = b.pop(net.now)
    assert msg is not None and msg.payload == payload
    assert a.stats["retransmits"] > 0
    assert a.memory_usage()["outbox_bytes"] == 0
    assert a.inflight_bytes(B) == 0


def test_one_megabyte_heavy_loss_both_directions() -> None:
    net, a, b = pair(loss=0.25, jitter=0.05, seed=11)
    payload = os.urandom(1024 * 1024)
    msg_id = net.send(1, 2, payload, deadline=3600)
    assert net.run_until(lambda: state(a, msg_id) == "received", max_time=3500)
    msg, _ = b.pop(net.now)
    assert msg is not None and msg.payload == payload


def test_window_and_peer_cap_respected() -> None:
    limits = Limits(receive_window=64 * 1024, max_inflight_per_peer=96 * 1024)
    net = BusNet(jitter=0.01)
    a = net.add(1, limits=limits)
    b = net.add(2, limits=limits)
    window_chunks = limits.receive_window // limits.chunk_size
    seen_max = 0
    violations: list[str] = []

    def check(src: bytes, action: SendPacket) -> None:
        nonlocal seen_max
        if src != A:
            return
        pkt = wire.decode(action.body)
        if isinstance(pkt, wire.Chunk):
            cum = b.incoming_progress(A, pkt.msg_id)
            if cum is not None and pkt.index >= cum + window_chunks:
                violations.append(f"chunk {pkt.index} beyond window at cum {cum}")
        used = a.inflight_bytes(B)
        seen_max = max(seen_max, used)
        if used > limits.max_inflight_per_peer:
            violations.append(f"in flight {used}")

    net.on_send = check
    ids = [net.send(1, 2, os.urandom(700_000)) for _ in range(3)]
    assert net.run_until(lambda: all(state(a, i) == "received" for i in ids))
    assert not violations
    assert seen_max > limits.receive_window // 2  # the window was actually used


def test_status_transitions_to_read() -> None:
    net, a, b = pair()
    seen: list[str] = []
    msg_id = net.send(1, 2, os.urandom(200_000))
    seen.append(state(a, msg_id))
    while state(a, msg_id) != "received":
        assert net.step(net.now + 100)
        if state(a, msg_id) != seen[-1]:
            seen.append(state(a, msg_id))
    assert seen == ["pending", "sending", "received"]
    st = a.status(msg_id)
    assert st is not None and st.acked == st.pending + st.sent + st.acked
    msg, actions = b.pop(net.now, peek=True)
    assert msg is not None and not actions  # peek sends no read receipt
    msg, actions = b.pop(net.now)
    net.run(B, actions)
    assert net.run_until(lambda: state(a, msg_id) == "read")


def test_sending_counts_reported() -> None:
    net, a, _ = pair(latency=1.0)
    msg_id = net.send(1, 2, os.urandom(1024 * 1024))
    net.run_until(lambda: state(a, msg_id) == "sending")
    st = a.status(msg_id)
    chunks = -(-1024 * 1024 // Limits().chunk_size)
    assert st is not None and st.pending + st.sent + st.acked == chunks and st.pending > 0


def test_deadline_abort_when_receiver_absent() -> None:
    net, a, _ = pair()
    net.down.add(B)
    msg_id = net.send(1, 2, b"hello", deadline=30)
    assert net.run_until(lambda: state(a, msg_id) == "aborted", max_time=100)
    st = a.status(msg_id)
    assert st is not None
    assert st.reason == "deadline passed: the receiver never answered (offline or unreachable)"
    assert 29 <= net.now - 1000 <= 31
    assert a.next_deadline() > net.now + 60  # nothing left but status garbage collection


def test_long_deadline_backs_off() -> None:
    net, a, _ = pair()
    net.down.add(B)
    msg_id = net.send(1, 2, b"x", deadline=2 * 86400)
    before = net.sent_packets
    net.run_until(lambda: False, max_time=86400)
    assert state(a, msg_id) == "pending"
    assert net.sent_packets - before < 86400 / 50  # INIT retries back off to >= 60 s
    net.run_until(lambda: state(a, msg_id) == "aborted", max_time=86400 + 100)


def test_receiver_abort_on_sender_deadline_frees_state() -> None:
    net, a, b = pair()
    msg_id = net.send(1, 2, os.urandom(500_000), deadline=5)
    # B gets the INIT, then B goes away so the transfer stalls.
    net.run_until(lambda: b.incoming_progress(A, msg_id) is not None)
    net.down.add(B)
    assert net.run_until(lambda: state(a, msg_id) == "aborted", max_time=10)
    net.down.discard(B)
    net.run_until(lambda: False, max_time=1)
    # the ABORT sent after B is back is delivered only if B was up; B frees on idle timeout anyway
    net.run_until(lambda: b.incoming_progress(A, msg_id) is None, max_time=200)
    assert b.memory_usage()["incoming_reserved"] == 0


def test_replies_correlated_and_reply_waiter() -> None:
    net, a, b = pair()
    msg_id = net.send(1, 2, b"question", topic=b"rpc")
    a.expect_reply(msg_id)
    net.run_until(lambda: len(b.inbox) == 1)
    msg, actions = b.pop(net.now)
    assert msg is not None
    net.run(B, actions)
    net.run(B, b.reply(msg.msg_id, b"answer", net.now, topic=b"rpc"))
    assert net.run_until(lambda: msg_id in net.replies)
    reply = net.replies[msg_id][0]
    assert reply.payload == b"answer" and reply.reply and reply.src_pk == B
    assert len(a.inbox) == 0  # went to the waiter, not the inbox
    st = b.status(msg_id)
    assert st is not None and st.reply
    with pytest.raises(UnknownMessage):
        b.reply(b"\x00" * 8, b"x", net.now)


def test_reply_without_waiter_lands_in_inbox() -> None:
    net, a, b = pair()
    msg_id = net.send(1, 2, b"q")
    net.run_until(lambda: len(b.inbox) == 1)
    net.run(B, b.reply(msg_id, b"r", net.now))
    net.run_until(lambda: len(a.inbox) == 1)
    msg, _ = a.pop(net.now)
    assert msg is not None and msg.reply and msg.msg_id == msg_id


def test_acl_reject_and_allow_and_reply_bypass() -> None:
    net, a, b = pair()
    b.topics.default_accept = False
    msg_id = net.send(1, 2, b"nope", topic=b"secret")
    assert net.run_until(lambda: state(a, msg_id) == "aborted")
    st = a.status(msg_id)
    assert st is not None and st.reason is not None and "ACL" in st.reason
    b.topics.add_topic(b"secret")
    b.topics.add_source(b"secret", subnet_for_public_key(A))
    msg_id = net.send(1, 2, b"yes", topic=b"secret")
    assert net.run_until(lambda: state(a, msg_id) == "received")
    # A configured topic without sources rejects; a configured subnet of someone else rejects.
    b.topics.remove_source(b"secret", subnet_for_public_key(A))
    b.topics.add_source(b"secret", IPv6Network("500::/64"))
    msg_id = net.send(1, 2, b"no", topic=b"secret")
    assert net.run_until(lambda: state(a, msg_id) == "aborted")
    # Replies to messages A sent bypass A's ACL.
    a.topics.default_accept = False
    q = net.send(1, 2, b"q", topic=b"open")
    b.topics.default_accept = True
    b.topics.remove_topic(b"open")
    assert net.run_until(lambda: state(a, q) == "received")
    net.run(B, b.reply(q, b"r", net.now, topic=b"whatever"))
    assert net.run_until(lambda: len(a.inbox) == 1)
    # but an unsolicited "reply" does not
    fake_reply_id = os.urandom(8)
    net.run(B, b.send(A, b"spoof", net.now, reply_to=fake_reply_id)[1])
    assert net.run_until(lambda: state(b, fake_reply_id) == "aborted")


def test_inbox_cap_back_pressure() -> None:
    limits = Limits(max_inbox_count=2, max_inbox_bytes=1024 * 1024, max_message_size=512 * 1024)
    net = BusNet()
    a = net.add(1)
    b = net.add(2, limits=limits)
    ok = [net.send(1, 2, b"m%d" % i) for i in range(2)]
    net.run_until(lambda: all(state(a, i) == "received" for i in ok))
    full = net.send(1, 2, b"third")
    assert net.run_until(lambda: state(a, full) == "aborted")
    st = a.status(full)
    assert st is not None and st.reason == "receiver inbox full"
    big = net.send(1, 2, os.urandom(2 * 1024 * 1024))
    assert net.run_until(lambda: state(a, big) == "aborted")
    st = a.status(big)
    assert st is not None and st.reason == "message larger than the receiver accepts"
    # popping makes room again
    b.pop(net.now)
    again = net.send(1, 2, b"fourth")
    assert net.run_until(lambda: state(a, again) == "received")


def test_busy_receiver_makes_sender_retry() -> None:
    limits = Limits(max_incoming_per_source=1)
    net = BusNet(latency=0.05)
    a = net.add(1, limits=Limits(max_active_per_destination=4))
    net.add(2, limits=limits)
    ids = [net.send(1, 2, os.urandom(300_000)) for _ in range(3)]
    assert net.run_until(lambda: all(state(a, i) == "received" for i in ids), max_time=600)


def test_sender_outbox_limits() -> None:
    net = BusNet()
    a = net.add(1, limits=Limits(max_message_size=1000, max_outbox_count=2))
    with pytest.raises(MessageTooLarge):
        a.send(B, bytes(1001), net.now)
    a.send(B, b"1", net.now)
    a.send(B, b"2", net.now)
    with pytest.raises(OutboxFull):
        a.send(B, b"3", net.now)
    with pytest.raises(BusError):
        a.send(B, b"x", net.now, topic=bytes(256))
    with pytest.raises(BusError):
        a.send(A, b"x", net.now)


def test_many_messages_queue_per_destination() -> None:
    net, a, b = pair(loss=0.1, jitter=0.02, seed=5)
    ids = [net.send(1, 2, os.urandom(random.randint(0, 40_000))) for _ in range(40)]
    assert net.run_until(lambda: all(state(a, i) == "received" for i in ids), max_time=3000)
    assert len(b.inbox) == 40


def test_three_nodes_concurrent() -> None:
    net = BusNet(loss=0.05, jitter=0.02, seed=9)
    a, b, c = net.add(1), net.add(2), net.add(3)
    p1, p2 = os.urandom(300_000), os.urandom(300_000)
    i1 = net.send(1, 3, p1)
    i2 = net.send(2, 3, p2)
    i3 = net.send(3, 1, p1)
    assert net.run_until(
        lambda: state(a, i1) == state(b, i2) == state(c, i3) == "received", max_time=3000
    )
    got = {c.pop(net.now)[0].payload for _ in range(2)}  # type: ignore[union-attr]
    assert got == {p1, p2}


def test_duplicate_and_out_of_bounds_chunks_ignored() -> None:
    net, a, b = pair()
    cs = Limits().chunk_size
    payload = os.urandom(2 * cs + 7000)  # three chunks, the last one short
    msg_id = net.send(1, 2, payload)
    net.run_until(lambda: b.incoming_progress(A, msg_id) is not None)
    bad = [(0, b"x"), (99, bytes(cs)), (2, bytes(5)), (1 << 31, b"y"), (0, payload[:cs])]
    for index, data in bad:
        b.handle_packet(A, wire.encode(wire.Chunk(msg_id, False, index, data)), net.now)
    assert b.incoming_progress(A, msg_id) == 1
    net.run_until(lambda: state(a, msg_id) == "received")
    msg, _ = b.pop(net.now)
    assert msg is not None and msg.payload == payload


def test_corrupt_data_detected() -> None:
    net, _a, b = pair()
    # A sends, but an attacker-controlled sender core on C announces a digest that won't match.
    digest = bytes(32)
    init = wire.Init(b"12345678", False, 2000, 1024, 60, digest, b"", bytes(1024))
    actions = b.handle_packet(C, wire.encode(init), net.now)
    actions += b.handle_packet(
        C, wire.encode(wire.Chunk(b"12345678", False, 1, bytes(976))), net.now
    )
    aborts = [wire.decode(x.body) for x in actions if isinstance(x, SendPacket)]
    assert any(isinstance(p, wire.Abort) and p.reason == wire.AbortReason.INTEGRITY for p in aborts)
    assert len(b.inbox) == 0 and b.memory_usage()["incoming_reserved"] == 0


def test_receiver_restart_mid_transfer_recovers() -> None:
    net, a, b = pair(seed=3)
    payload = os.urandom(600_000)
    msg_id = net.send(1, 2, payload)
    net.run_until(lambda: (b.incoming_progress(A, msg_id) or 0) > 5)
    net.cores[B] = MessageCore(B, net.now, wall_offset=1.7e9)  # lost all state
    b2 = net.cores[B]
    assert net.run_until(lambda: state(a, msg_id) == "received", max_time=300)
    msg, _ = b2.pop(net.now)
    assert msg is not None and msg.payload == payload


def test_restart_with_store_delivers_message_accepted_before_restart(tmp_path: Path) -> None:
    net = BusNet()
    a_store = MessageStore(tmp_path / "a")
    b_store = MessageStore(tmp_path / "b")
    a = net.add(1, store=a_store)
    net.add(2, store=b_store)
    delivered = net.send(1, 2, b"before restart")
    net.run_until(lambda: state(a, delivered) == "received")
    net.down.add(B)
    pending = net.send(1, 2, os.urandom(100_000), deadline=3600)
    net.run_until(lambda: False, max_time=5)
    assert state(a, pending) == "pending"
    # both nodes restart
    a_store.close()
    b_store.close()
    net.cores.clear()
    net.down.clear()
    net.now += 50
    a2 = net.add(1, store=MessageStore(tmp_path / "a"))
    b2 = net.add(2, store=MessageStore(tmp_path / "b"))
    assert state(a2, delivered) == "received"  # status survives
    msg, actions = b2.pop(net.now)
    assert msg is not None and msg.payload == b"before restart"
    net.run(B, actions)
    net.run(A, a2.start(net.now))
    assert net.run_until(lambda: state(a2, pending) == "received", max_time=600)
    assert net.run_until(lambda: state(a2, delivered) == "read", max_time=600)
    msg, _ = b2.pop(net.now)
    assert msg is not None and len(msg.payload) == 100_000


def test_restart_after_deadline_marks_aborted(tmp_path: Path) -> None:
    net = BusNet()
    net.down.add(B)
    a = net.add(1, store=MessageStore(tmp_path))
    msg_id = net.send(1, 2, b"x", deadline=10)
    assert a.store is not None
    a.store.close()
    net.now += 100
    a2 = net.add(1, store=MessageStore(tmp_path))
    assert state(a2, msg_id) == "aborted"
