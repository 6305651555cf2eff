"""Issue 8 item 7 on the bus core: memory amplification, quotas, expiry, leases, durability."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest
from blake3 import blake3

from hyphal.bus.chunks import CHUNK_SIZE
from hyphal.bus.core import Action, ForwardMessage, Limits, MessageArrived, MessageCore, SendPacket
from hyphal.bus.errors import BusError, ForwardNotAllowed
from hyphal.bus.store import MessageStore
from hyphal.bus.topics import TopicTable
from hyphal.identity import subnet_for_public_key
from hyphal.wire import bus as wire
from hyphal.wire.bus import AbortReason

ME, A, B, C = (bytes([n]) * 32 for n in (9, 1, 2, 3))
NOW = 1000.0
MIB = 1024 * 1024


def init(
    msg_id: bytes, payload_or_total: bytes | int, *, topic: bytes = b"", first: bool = True
) -> bytes:
    """An INIT for a message (the real digest when given the payload), carrying chunk 0."""
    if isinstance(payload_or_total, int):
        total, digest, data = payload_or_total, bytes(32), bytes(min(CHUNK_SIZE, payload_or_total))
    else:
        total, digest = len(payload_or_total), blake3(payload_or_total).digest()
        data = payload_or_total[:CHUNK_SIZE]
    return wire.encode(
        wire.Init(msg_id, False, total, CHUNK_SIZE, 3600, digest, topic, data if first else b"")
    )


def replies(actions: list[Action]) -> list[wire.BusPacket]:
    return [wire.decode(a.body) for a in actions if isinstance(a, SendPacket)]


def aborts(actions: list[Action]) -> list[AbortReason]:
    return [p.reason for p in replies(actions) if isinstance(p, wire.Abort)]


def received(actions: list[Action]) -> bool:
    return any(isinstance(p, wire.Received) for p in replies(actions))


def test_huge_inits_allocate_only_arrived_chunks_and_do_not_lock_out_others() -> None:
    core = MessageCore(ME, NOW)
    answers = [core.handle_packet(A, init(bytes([i]) * 8, 128 * MIB), NOW) for i in range(4)]
    usage = core.memory_usage()
    # Memory follows the chunks that arrived (one each), not the 4 x 128 MiB announced.
    assert usage["incoming_allocated"] < 4 * (CHUNK_SIZE + 8192)
    # One source reserves at most max_reserved_per_source; the rest of its INITs are BUSY ...
    assert usage["incoming_reserved"] <= core.limits.max_reserved_per_source
    assert [aborts(a) for a in answers[1:]] == [[AbortReason.BUSY]] * 3
    # ... and another sender is still admitted.
    payload = os.urandom(1000)
    assert received(core.handle_packet(B, init(b"b" * 8, payload), NOW))
    assert core.pop(NOW)[0] is not None


def test_one_source_cannot_fill_the_inbox() -> None:
    core = MessageCore(ME, NOW, limits=Limits(max_inbox_per_source=3))
    results = [core.handle_packet(A, init(bytes([i]) * 8, b""), NOW) for i in range(4)]
    assert [received(r) for r in results] == [True, True, True, False]
    assert aborts(results[3]) == [AbortReason.INBOX_FULL]
    assert core.stats["refused_inbox_full"] == 1  # the refusal is counted by its reason
    assert received(core.handle_packet(B, init(b"b" * 8, b""), NOW))


def test_unread_messages_expire_and_are_counted(tmp_path: Path) -> None:
    store = MessageStore(tmp_path)
    core = MessageCore(ME, NOW, limits=Limits(inbox_ttl=100.0), store=store)
    for i in range(3):
        core.handle_packet(A, init(bytes([i]) * 8, b"x"), NOW + i)
    assert core.next_deadline() == pytest.approx(NOW + 100.0)
    core.on_timer(NOW + 101.0)
    assert len(core.inbox) == 1 and core.stats["inbox_expired"] == 2
    core.on_timer(core.next_deadline())
    assert len(core.inbox) == 0 and core.stats["inbox_expired"] == 3
    assert store.inbox_load() == []  # gone from the store too: a restart does not bring them back


def test_expired_messages_restored_from_the_store_are_dropped(tmp_path: Path) -> None:
    store = MessageStore(tmp_path)
    core = MessageCore(ME, NOW, store=store, limits=Limits(inbox_ttl=50.0))
    core.handle_packet(A, init(b"a" * 8, b"old"), NOW)
    store.close()
    store = MessageStore(tmp_path)
    later = MessageCore(ME, NOW + 60.0, store=store, limits=Limits(inbox_ttl=50.0))
    later.on_timer(NOW + 60.0)
    assert len(later.inbox) == 0 and later.stats["inbox_expired"] == 1
    store.close()


def test_resent_init_does_not_keep_a_transfer_alive() -> None:
    core = MessageCore(ME, NOW, limits=Limits(incoming_idle_timeout=120.0))
    payload = os.urandom(3 * CHUNK_SIZE)
    core.handle_packet(A, init(b"a" * 8, payload), NOW)
    t = NOW
    while t < NOW + 300.0:
        t += 60.0
        # The same INIT again, with and without its (duplicate) chunk 0: no progress.
        core.handle_packet(A, init(b"a" * 8, payload), t)
        core.handle_packet(A, init(b"a" * 8, payload, first=False), t)
    core.on_timer(t)
    assert core.incoming_progress(A, b"a" * 8) is None
    assert core.memory_usage()["incoming_reserved"] == 0


def test_new_chunks_do_keep_a_transfer_alive() -> None:
    core = MessageCore(ME, NOW, limits=Limits(incoming_idle_timeout=120.0))
    payload = os.urandom(3 * CHUNK_SIZE)
    core.handle_packet(A, init(b"a" * 8, payload), NOW)
    core.on_timer(NOW + 100.0)
    chunk = wire.encode_chunk(b"a" * 8, False, 1, payload[CHUNK_SIZE : 2 * CHUNK_SIZE])
    core.handle_packet(A, chunk, NOW + 100.0)
    core.on_timer(NOW + 200.0)
    assert core.incoming_progress(A, b"a" * 8) == 2


def _reads(actions: list[Action]) -> list[bytes]:
    return [p.msg_id for p in replies(actions) if isinstance(p, wire.Read)]


def test_take_leases_until_ack_and_release_puts_it_back_first() -> None:
    core = MessageCore(ME, NOW)
    for i in (1, 2):
        core.handle_packet(A, init(bytes([i]) * 8, b"m%d" % i), NOW)
    first = core.take(NOW)
    assert first is not None and first.payload == b"m1"
    # Hidden from other readers but still in the inbox, and no READ was sent.
    second = core.take(NOW)
    assert second is not None and second.payload == b"m2"
    assert core.take(NOW) is None and core.pop(NOW)[0] is None
    assert len(core.inbox) == 2
    released = core.release(first.msg_id)
    assert any(isinstance(a, MessageArrived) for a in released)
    again = core.take(NOW)
    assert again is not None and again.payload == b"m1"
    done, actions = core.ack(again.msg_id, NOW)
    assert done and _reads(actions) == [again.msg_id]
    assert core.ack(again.msg_id, NOW) == (False, [])
    assert len(core.inbox) == 1


def test_unacked_lease_expires_back_into_the_inbox() -> None:
    core = MessageCore(ME, NOW, limits=Limits(lease_time=30.0))
    core.handle_packet(A, init(b"a" * 8, b"m"), NOW)
    assert core.take(NOW) is not None
    assert core.pop(NOW)[0] is None
    actions = core.on_timer(NOW + 31.0)
    assert any(isinstance(a, MessageArrived) for a in actions) and not _reads(actions)
    assert core.stats["leases_expired"] == 1
    message, actions = core.pop(NOW + 31.0)
    assert message is not None and _reads(actions) == [b"a" * 8]


def test_lease_does_not_survive_restart_but_the_message_does(tmp_path: Path) -> None:
    store = MessageStore(tmp_path)
    core = MessageCore(ME, NOW, store=store)
    core.handle_packet(A, init(b"a" * 8, b"m"), NOW)
    assert core.take(NOW) is not None
    store.close()
    store = MessageStore(tmp_path)
    again = MessageCore(ME, NOW + 1.0, store=store)
    message = again.take(NOW + 1.0)
    assert message is not None and message.payload == b"m"
    store.close()


def test_forwarded_message_is_stored_until_the_socket_has_it(tmp_path: Path) -> None:
    sock_dir = tmp_path / "sockets"
    sock_dir.mkdir()
    path = str(sock_dir / "svc.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    try:
        topics = TopicTable(forward_dir=sock_dir)
        topics.add_topic(b"svc")
        topics.add_source(b"svc", subnet_for_public_key(A))
        topics.set_forward_socket(b"svc", path)
        store = MessageStore(tmp_path / "store")
        core = MessageCore(ME, NOW, store=store, topics=topics)
        actions = core.handle_packet(A, init(b"a" * 8, b"job", topic=b"svc"), NOW)
        assert [a.socket_path for a in actions if isinstance(a, ForwardMessage)] == [path]
        assert received(actions)
        assert core.pop(NOW)[0] is None  # held for the socket, not handed to inbox readers
        assert [m.payload for _, m in store.inbox_load()] == [b"job"]  # durable before RECEIVED
        store.close()
        # Crash before the socket got it: the restarted node forwards it again.
        store = MessageStore(tmp_path / "store")
        again = MessageCore(ME, NOW + 5.0, store=store, topics=topics)
        restarted = again.start(NOW + 5.0)
        forwarded = [a for a in restarted if isinstance(a, ForwardMessage)]
        assert [f.message.payload for f in forwarded] == [b"job"]
        done, _ = again.ack(b"a" * 8, NOW + 6.0)
        assert done and store.inbox_load() == []
        store.close()
    finally:
        server.close()


def test_forward_socket_must_be_inside_forward_dir(tmp_path: Path) -> None:
    inside = tmp_path / "fwd"
    inside.mkdir()
    outside_sock = tmp_path / "outside.sock"
    inside_sock = inside / "ok.sock"
    servers = []
    for p in (outside_sock, inside_sock):
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        servers.append(s)
    (inside / "link.sock").symlink_to(outside_sock)
    (inside / "file").write_bytes(b"")
    try:
        disabled = TopicTable()
        disabled.add_topic(b"t")
        with pytest.raises(ForwardNotAllowed, match="forward directory") as err:
            disabled.set_forward_socket(b"t", str(inside_sock))
        assert isinstance(err.value, BusError) and err.value.status == 403
        table = TopicTable(forward_dir=inside)
        table.add_topic(b"t")
        for bad in (outside_sock, inside / "link.sock", inside / "file", inside / "missing"):
            with pytest.raises(ForwardNotAllowed):
                table.set_forward_socket(b"t", str(bad))
        with pytest.raises(ForwardNotAllowed):
            table.set_forward_socket(b"t", str(inside / ".." / "outside.sock"))
        assert table.forward_socket(b"t") is None
        table.set_forward_socket(b"t", str(inside_sock))
        assert table.forward_socket(b"t") == str(inside_sock)
    finally:
        for s in servers:
            s.close()


def test_forward_socket_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to chown the socket")
    path = tmp_path / "other.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    try:
        os.chown(path, 4242, 4242)
        table = TopicTable(forward_dir=tmp_path)
        table.add_topic(b"t")
        with pytest.raises(ForwardNotAllowed, match="uid 4242"):
            table.set_forward_socket(b"t", str(path))
    finally:
        s.close()


def test_store_is_fully_synchronous(tmp_path: Path) -> None:
    store = MessageStore(tmp_path)
    try:
        assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    finally:
        store.close()


def test_corrupt_store_is_moved_aside_and_the_service_starts_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = os.urandom(16384)
    (tmp_path / MessageStore.FILENAME).write_bytes(garbage)
    with caplog.at_level(logging.ERROR, logger="hyphal.bus.store"):
        store = MessageStore(tmp_path)
    try:
        assert store.moved_aside is not None and store.moved_aside.read_bytes() == garbage
        assert store.moved_aside.name.startswith(MessageStore.FILENAME + ".corrupt-")
        assert [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
        core = MessageCore(ME, NOW, store=store)
        assert len(core.inbox) == 0
        core.handle_packet(A, init(b"a" * 8, b"m"), NOW)
        assert len(store.inbox_load()) == 1
    finally:
        store.close()
