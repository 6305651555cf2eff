"""Issue 9 (bus): the core emits store writes as actions; the service applies them off the loop.

RECEIVED (and the first INIT of a stored outbound message) goes out only once its row is durable,
and a 128 MiB write runs in the writer thread while the loop keeps ticking.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Awaitable
from pathlib import Path

import pytest

from hyphal.bus.core import MessageCore, SendPacket
from hyphal.bus.persist import StoreInbox, StoreOutbox, apply
from hyphal.bus.service import MessageService
from hyphal.bus.store import MessageStore
from hyphal.wire import bus as wire

from .test_offload import NOW, A, B, packets

BIG = 128 * 1024 * 1024


def stored_rows(directory: Path, table: str) -> list[bytes]:
    """Message ids in ``table`` as a second, independent connection sees them (committed rows)."""
    path = directory / MessageStore.FILENAME
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [bytes(r[0]) for r in db.execute(f"SELECT id FROM {table}")]
    finally:
        db.close()


async def worst_lag(work: Awaitable[None]) -> float:
    """The longest the loop failed to run a 10 ms ticker (beyond its 10 ms) while ``work`` ran."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    running = True

    async def ticker() -> None:
        nonlocal worst
        last = loop.time()
        while running:
            await asyncio.sleep(0.01)
            now = loop.time()
            worst, last = max(worst, now - last - 0.01), now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        await work
    finally:
        running = False
        await task
    return worst


def test_core_with_deferred_writes_leaves_the_store_to_the_adapter(tmp_path: Path) -> None:
    store = MessageStore(tmp_path)
    try:
        receiver = MessageCore(B, NOW, store=store, defer_writes=True)
        actions = receiver.handle_packet(A, packets(MessageCore(A, NOW), b"hello")[0], NOW)
        assert store.inbox_load() == []  # the state machine wrote nothing itself
        kinds = [type(a).__name__ for a in actions]
        assert kinds.index("StoreInbox") < kinds.index("SendPacket")  # the write comes first
        received = [a for a in actions if isinstance(a, SendPacket)]
        assert isinstance(wire.decode(received[-1].body), wire.Received)
        for action in actions:
            if isinstance(action, StoreInbox):
                apply(store, action)
        assert [m.payload for _, m in store.inbox_load()] == [b"hello"]

        sender = MessageCore(A, NOW, store=store, defer_writes=True)
        _, out = sender.send(B, b"x", NOW)
        assert isinstance(out[0], StoreOutbox) and store.outbox_load() == []
    finally:
        store.close()


async def test_received_is_sent_only_after_the_inbox_row_is_durable(tmp_path: Path) -> None:
    seen_at_received: list[list[bytes]] = []
    got_received = asyncio.Event()

    def send_packet(dst: bytes, body: bytes) -> bool:
        if isinstance(wire.decode(body), wire.Received):
            seen_at_received.append(stored_rows(tmp_path, "inbox"))
            got_received.set()
        return True

    service = MessageService(B, send_packet, lambda ip: None, store_dir=tmp_path)
    await service.start()
    try:
        init = packets(MessageCore(A, NOW), b"durable")[0]
        service.handle_packet(A, init)
        service.handle_packet(A, init)  # resent INIT of a completed message: RECEIVED again
        assert seen_at_received == []  # not yet: the row is being written in the writer thread
        await asyncio.wait_for(got_received.wait(), 10.0)
        await asyncio.wait_for(service._writes.join(), 10.0)
        assert seen_at_received == [[wire.decode(init).msg_id]] * 2
    finally:
        await service.close()


async def test_close_waits_for_queued_writes(tmp_path: Path) -> None:
    service = MessageService(A, lambda dst, body: True, lambda ip: None, store_dir=tmp_path)
    await service.start()
    msg_id = service.send(B, b"keep me")
    await service.close()
    assert stored_rows(tmp_path, "outbox") == [msg_id]


@pytest.mark.loop_lag
async def test_large_outbox_write_keeps_the_loop_ticking(tmp_path: Path) -> None:
    payload = os.urandom(BIG)
    init_sent = asyncio.Event()
    rows_at_init: list[int] = []

    def send_packet(dst: bytes, body: bytes) -> bool:
        if not init_sent.is_set() and isinstance(wire.decode(body), wire.Init):
            rows_at_init.append(len(stored_rows(tmp_path, "outbox")))
            init_sent.set()
        return True

    service = MessageService(A, send_packet, lambda ip: None, store_dir=tmp_path)
    await service.start()

    async def work() -> None:
        await service.submit(B, payload)
        await asyncio.wait_for(init_sent.wait(), 60.0)

    try:
        lag = await worst_lag(work())
        assert rows_at_init == [1]  # the first INIT waited for the durable outbox row
        assert lag < 0.25, f"loop stalled {lag:.3f} s while storing a 128 MiB outbound message"
    finally:
        await service.close()


@pytest.mark.loop_lag
async def test_large_inbox_write_keeps_the_loop_ticking(tmp_path: Path) -> None:
    payload = os.urandom(BIG)
    bodies = packets(MessageCore(A, NOW), payload)
    received = asyncio.Event()

    def send_packet(dst: bytes, body: bytes) -> bool:
        if isinstance(wire.decode(body), wire.Received):
            received.set()
        return True

    service = MessageService(B, send_packet, lambda ip: None, store_dir=tmp_path)
    await service.start()
    for body in bodies:
        service.handle_packet(A, body)
    del bodies
    # Complete (joined on the loop); what is left is the hash, then the 128 MiB inbox write.
    assert not received.is_set()

    try:
        lag = await worst_lag(asyncio.wait_for(received.wait(), 60.0))
        assert len(stored_rows(tmp_path, "inbox")) == 1
        assert lag < 0.25, f"loop stalled {lag:.3f} s while storing a 128 MiB received message"
    finally:
        await service.close()


async def test_failed_write_logs_once_and_withholds_received(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[wire.BusPacket] = []
    service = MessageService(
        B,
        lambda dst, body: sent.append(wire.decode(body)) is None,
        lambda ip: None,
        store_dir=tmp_path,
    )
    await service.start()
    db = sqlite3.connect(tmp_path / MessageStore.FILENAME)
    db.execute("DROP TABLE inbox")  # every inbox write now fails
    db.close()
    try:
        with caplog.at_level(logging.ERROR, logger="hyphal.bus.service"):
            service.handle_packet(A, packets(MessageCore(A, NOW), b"lost")[0])
            await asyncio.wait_for(service._writes.join(), 10.0)
        assert not [p for p in sent if isinstance(p, wire.Received)]  # not durable: no RECEIVED
        assert len([r for r in caplog.records if "StoreInbox failed" in r.message]) == 1
        # The node keeps serving: an outbound message still goes out.
        service.send(A, b"still here")
        await asyncio.wait_for(service._writes.join(), 10.0)
        assert any(isinstance(p, wire.Init) for p in sent)
    finally:
        await service.close()
