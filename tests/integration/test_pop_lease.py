"""Reading the inbox over real HTTP (uvicorn on loopback): nothing is consumed for a client that
is no longer there, and READ is sent only for messages a client was handed."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from hyphal.api.app import build_app
from hyphal.api.messages import messages_router
from hyphal.api.server import ApiServer
from hyphal.bus.service import MessageService
from hyphal.testing.buswire import BusWire


@dataclass
class Reader:
    """The receiving node's bus behind a real HTTP server, and the sending node's bus."""

    receiver: MessageService
    sender: MessageService
    base_url: str


@pytest.fixture
async def reader() -> AsyncIterator[Reader]:
    wire = BusWire()
    receiver, sender = wire.add(), wire.add()
    async with wire:
        app = build_app(messages_router(lambda: receiver), token=None, bind_host="127.0.0.1")
        server = ApiServer(app, "127.0.0.1", 0)
        server.start()
        try:
            yield Reader(receiver, sender, f"http://127.0.0.1:{server.port}")
        finally:
            await server.stop()


async def _state_of(service: MessageService, msg_id: bytes, want: str) -> str:
    for _ in range(200):
        status = service.status(msg_id)
        assert status is not None
        if status.state == want:
            return want
        await asyncio.sleep(0.01)
    return status.state


async def test_abandoned_long_poll_consumes_nothing(reader: Reader) -> None:
    async with httpx.AsyncClient(base_url=reader.base_url) as client:
        poll = asyncio.create_task(client.get("/api/v1/messages", params={"timeout": 3}))
        await asyncio.sleep(0.3)  # the poll is parked in the server
        poll.cancel()  # the client gives up: httpx closes its connection
        with pytest.raises(asyncio.CancelledError):
            await poll
    await asyncio.sleep(0.2)  # the server notices the disconnect
    msg_id = reader.sender.send(reader.receiver.public_key, b"after the client left")
    assert await _state_of(reader.sender, msg_id, "received") == "received"
    await asyncio.sleep(0.3)  # an orphaned handler would take and READ it now
    assert reader.sender.status(msg_id).state == "received"  # type: ignore[union-attr]
    async with httpx.AsyncClient(base_url=reader.base_url) as client:
        r = await client.get("/api/v1/messages")
    assert r.status_code == 200, r.text
    assert base64.b64decode(r.json()["payload"]) == b"after the client left"
    assert await _state_of(reader.sender, msg_id, "read") == "read"


async def test_explicit_ack_keeps_the_lease_until_acked(reader: Reader) -> None:
    msg_id = reader.sender.send(reader.receiver.public_key, b"careful reader")
    assert await _state_of(reader.sender, msg_id, "received") == "received"
    async with httpx.AsyncClient(base_url=reader.base_url) as client:
        r = await client.get("/api/v1/messages", params={"explicit_ack": True})
        assert r.status_code == 200 and r.json()["id"] == msg_id.hex()
        assert (await client.get("/api/v1/messages")).status_code == 204  # leased, hidden
        assert reader.sender.status(msg_id).state == "received"  # type: ignore[union-attr]
        assert (await client.post(f"/api/v1/messages/ack/{msg_id.hex()}")).status_code == 204
        assert await _state_of(reader.sender, msg_id, "read") == "read"
        r = await client.post(f"/api/v1/messages/ack/{msg_id.hex()}")
        assert r.status_code == 404 and "lease" in r.json()["error"]
