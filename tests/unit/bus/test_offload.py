"""Issue 8 item 4 (bus part): hashing a large received message runs off the event loop."""

from __future__ import annotations

import asyncio
import os

import pytest

from hyphal.bus.chunks import CHUNK_SIZE
from hyphal.bus.core import (
    PARALLEL_HASH_MIN,
    MessageCore,
    SendPacket,
    VerifyMessage,
    message_digest,
)
from hyphal.bus.service import MessageService
from hyphal.wire import bus as wire

A, B = bytes([1]) * 32, bytes([2]) * 32
NOW = 1000.0


def packets(core: MessageCore, payload: bytes) -> list[bytes]:
    """Every bus packet a sender core emits for ``payload`` when nothing is lost (INIT first)."""
    _, actions = core.send(B, payload, NOW)
    init = next(a.body for a in actions if isinstance(a, SendPacket))
    chunks = [
        wire.encode_chunk(
            wire.decode(init).msg_id, False, i, payload[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE]
        )
        for i in range(1, -(-len(payload) // CHUNK_SIZE))
    ]
    return [init, *chunks]


def test_core_defers_large_digest_and_delivers_on_answer() -> None:
    payload = os.urandom(PARALLEL_HASH_MIN + 5)
    receiver = MessageCore(B, NOW, defer_large_hashes=True)
    actions = []
    for body in packets(MessageCore(A, NOW), payload):
        actions = receiver.handle_packet(A, body, NOW)
    verify = [a for a in actions if isinstance(a, VerifyMessage)]
    assert len(verify) == 1 and len(receiver.inbox) == 0  # nothing delivered before the answer
    again = receiver.handle_packet(A, packets(MessageCore(A, NOW), payload)[-1], NOW)
    assert not [a for a in again if isinstance(a, VerifyMessage)]  # a duplicate does not re-verify
    done = receiver.on_verified(verify[0].key, verify[0].payload, True, NOW)
    assert any(
        isinstance(wire.decode(a.body), wire.Received) for a in done if isinstance(a, SendPacket)
    )
    message, _ = receiver.pop(NOW)
    assert message is not None and message.payload == payload


def test_core_aborts_when_deferred_digest_fails() -> None:
    payload = os.urandom(PARALLEL_HASH_MIN)
    receiver = MessageCore(B, NOW, defer_large_hashes=True)
    for body in packets(MessageCore(A, NOW), payload):
        actions = receiver.handle_packet(A, body, NOW)
    verify = next(a for a in actions if isinstance(a, VerifyMessage))
    done = receiver.on_verified(verify.key, verify.payload, False, NOW)
    sent = [wire.decode(a.body) for a in done if isinstance(a, SendPacket)]
    assert [p.reason for p in sent if isinstance(p, wire.Abort)] == [wire.AbortReason.INTEGRITY]
    assert len(receiver.inbox) == 0


@pytest.mark.loop_lag
async def test_service_keeps_the_loop_responsive_while_hashing() -> None:
    """A ticker on the loop runs while a 64 MiB message is being verified."""
    payload = os.urandom(64 * 1024 * 1024)
    bodies = packets(MessageCore(A, NOW), payload)
    service = MessageService(B, lambda dst, body: True, lambda ip: None)
    await service.start()
    try:
        for body in bodies:
            service.handle_packet(A, body)
        # The final chunk has been handled, but the message is not delivered synchronously:
        # its hash is running in a worker thread while this coroutine (the ticker) runs.
        assert len(service.core.inbox) == 0
        loop = asyncio.get_running_loop()
        ticks = 0
        worst = 0.0
        last = loop.time()
        while len(service.core.inbox) == 0 and ticks < 10_000:
            await asyncio.sleep(0.005)
            now = loop.time()
            worst, last, ticks = max(worst, now - last), now, ticks + 1
        message = await service.pop(timeout=0.0)
        assert message is not None and message.payload == payload
        assert worst < 0.25, f"loop stalled {worst:.3f} s while hashing"
    finally:
        await service.close()


async def test_submit_hashes_a_large_payload_while_the_loop_runs() -> None:
    payload = os.urandom(64 * 1024 * 1024)
    sent: list[bytes] = []
    service = MessageService(A, lambda dst, body: sent.append(body) is None, lambda ip: None)
    await service.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0)
        before = ticks
        await service.submit(B, payload)
        assert ticks > before + 1  # the loop ran other work while the digest was computed
        init = wire.decode(sent[0])
        assert isinstance(init, wire.Init) and init.digest == message_digest(payload)
    finally:
        task.cancel()
        await service.close()
