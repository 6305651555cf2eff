"""MessageService leases and topic forwarding, two real services wired back to back."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hyphal.bus.service import MessageService
from hyphal.identity import subnet_for_public_key
from hyphal.testing.buswire import BusWire


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[MessageService, MessageService]]:
    wire = BusWire(forward_dir=tmp_path)
    a, b = wire.add(), wire.add()
    async with wire:
        yield a, b


async def wait_state(service: MessageService, msg_id: bytes, state: str) -> None:
    for _ in range(500):
        st = service.status(msg_id)
        if st is not None and st.state == state:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never {state}: {service.status(msg_id)}")


async def test_take_waits_and_read_is_sent_only_on_ack(
    pair: tuple[MessageService, MessageService],
) -> None:
    a, b = pair
    waiter = asyncio.create_task(b.take(b"jobs", 5.0))
    await asyncio.sleep(0.01)
    msg_id = a.send(b.public_key, b"work", topic=b"jobs/1")
    message = await waiter
    assert message is not None and message.payload == b"work"
    await wait_state(a, msg_id, "received")
    assert await b.take(None, 0.0) is None  # leased: hidden from other readers
    await asyncio.sleep(0.05)
    st = a.status(msg_id)
    assert st is not None and st.state == "received"  # no READ before the ack
    b.release(msg_id)
    again = await b.take(None, 0.0)
    assert again is not None and again.msg_id == msg_id
    assert b.ack(msg_id) and not b.ack(msg_id)
    await wait_state(a, msg_id, "read")
    assert await b.pop(timeout=0.0) is None


def _forward_topic(b: MessageService, a: MessageService, path: str) -> None:
    b.topics.add_topic(b"svc")
    b.topics.add_source(b"svc", subnet_for_public_key(a.public_key))
    b.topics.set_forward_socket(b"svc", path)


async def test_forward_answer_is_read_to_eof(
    pair: tuple[MessageService, MessageService], tmp_path: Path
) -> None:
    a, b = pair
    path = str(tmp_path / "svc.sock")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()
        writer.write(data[:2])
        await writer.drain()
        await asyncio.sleep(0.05)  # the answer arrives in two pieces
        writer.write(data[2:] + b"!")
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(handle, path)
    try:
        _forward_topic(b, a, path)
        msg_id, reply = await a.send_and_wait_reply(b.public_key, b"ping", 5.0, topic=b"svc")
        assert reply is not None and reply.payload == b"ping!"
        await wait_state(a, msg_id, "read")  # READ once the socket had it
        assert await b.pop(timeout=0.0) is None
    finally:
        server.close()


async def test_forward_to_a_vanished_socket_goes_to_the_inbox(
    pair: tuple[MessageService, MessageService], tmp_path: Path
) -> None:
    a, b = pair
    path = str(tmp_path / "gone.sock")
    server = await asyncio.start_unix_server(lambda r, w: None, path)
    _forward_topic(b, a, path)
    server.close()
    await server.wait_closed()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    msg_id = a.send(b.public_key, b"job", topic=b"svc")
    message = await b.pop(timeout=5.0)
    assert message is not None and message.msg_id == msg_id


async def test_reply_arriving_as_its_waiter_is_cancelled_goes_to_the_inbox(
    pair: tuple[MessageService, MessageService],
) -> None:
    a, b = pair
    waiting = asyncio.create_task(a.send_and_wait_reply(b.public_key, b"q", 5.0))
    request = await b.pop(timeout=5.0)
    assert request is not None
    b.reply(request.msg_id, b"answer")  # the reply's one packet is now queued for a
    waiting.cancel()  # the waiter's future is cancelled before that packet is handled
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    reply = await a.pop(timeout=1.0)
    assert reply is not None and reply.payload == b"answer" and reply.reply
