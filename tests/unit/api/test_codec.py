"""The payload codec: strict base64 like the standard library's, and big work off the loop."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.api import codec
from hyphal.api.app import create_app
from hyphal.api.codec import b64decode_any, b64decode_strict, message_json, off_loop
from hyphal.bus.inbox import InboundMessage
from hyphal.identity import NodeIdentity, address_for_public_key
from hyphal.node import Node

#: The loop must never go this long without running another task.
MAX_LAG = 0.25


class LagTicker:
    """Ticks every few milliseconds on the loop and records the longest gap between ticks."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.max_gap = 0.0
        self.ticks = 0
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None

    def _tick(self) -> None:
        now = self.clock()
        self.max_gap = max(self.max_gap, now - self._last)
        self._last = now

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self._tick()
            self.ticks += 1

    async def __aenter__(self) -> LagTicker:
        self._last = self.clock()
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._tick()  # the gap up to now counts too: a stall may last until the work is done
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


def _inbound(payload: bytes, topic: bytes = b"") -> InboundMessage:
    src = NodeIdentity.generate().public_key
    dst = NodeIdentity.generate().public_key
    return InboundMessage(
        msg_id=os.urandom(8),
        src_pk=src,
        dst_pk=dst,
        topic=topic,
        payload=payload,
        reply=False,
        received_at=0.0,
    )


def test_message_json_matches_a_json_encoder() -> None:
    for payload, topic in [
        (b"", b""),
        (b"x" * 1000, b"t"),
        (os.urandom(codec.ENCODE_CHUNK + 7), b""),
    ]:
        message = _inbound(payload, topic)
        expected = {
            "id": message.msg_id.hex(),
            "srcIp": str(address_for_public_key(message.src_pk)),
            "srcPk": message.src_pk.hex(),
            "dstIp": str(address_for_public_key(message.dst_pk)),
            "dstPk": message.dst_pk.hex(),
            "payload": base64.b64encode(payload).decode(),
        }
        if topic:
            expected["topic"] = base64.b64encode(topic).decode()
        assert json.loads(message_json(message)) == expected


@given(st.binary(max_size=3000), st.sampled_from([4, 8, 12, 1 << 20]))
def test_chunked_decode_round_trips(data: bytes, chunk: int) -> None:
    old = codec.DECODE_CHUNK
    codec.DECODE_CHUNK = chunk
    try:
        assert b64decode_strict(base64.b64encode(data)) == data
        assert b64decode_any(base64.urlsafe_b64encode(data).decode()) == data
    finally:
        codec.DECODE_CHUNK = old


@given(st.text(max_size=64) | st.binary(max_size=64), st.sampled_from([4, 8, 1 << 20]))
def test_strict_decode_agrees_with_the_standard_library(data: str | bytes, chunk: int) -> None:
    old = codec.DECODE_CHUNK
    codec.DECODE_CHUNK = chunk
    try:
        try:
            expected: bytes | None = base64.b64decode(data, validate=True)
            if len(data) % 4:
                expected = None
        except (binascii.Error, ValueError):
            expected = None
        try:
            got: bytes | None = b64decode_strict(data)
        except ValueError:  # binascii.Error, or non-ASCII text
            got = None
        assert got == expected
    finally:
        codec.DECODE_CHUNK = old


def test_padding_inside_is_refused_across_chunks() -> None:
    old = codec.DECODE_CHUNK
    codec.DECODE_CHUNK = 4
    try:
        with pytest.raises(binascii.Error):
            b64decode_strict("QQ==QUJD")
    finally:
        codec.DECODE_CHUNK = old


@pytest.fixture
async def client(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8989") as http:
        yield http


@pytest.mark.loop_lag
async def test_big_message_json_rendering_keeps_the_loop_ticking() -> None:
    message = _inbound(os.urandom(96 << 20))
    async with LagTicker() as ticker:
        rendered = await off_loop(len(message.payload), message_json, message)
    assert len(rendered) > 128 << 20
    assert ticker.ticks > 0
    assert ticker.max_gap < MAX_LAG, f"the loop stalled {ticker.max_gap:.3f} s"


@pytest.mark.loop_lag
async def test_big_json_post_keeps_the_loop_ticking(client: httpx.AsyncClient) -> None:
    other = NodeIdentity.generate().public_key
    body = (
        b'{"dst":{"pk":"'
        + other.hex().encode()
        + b'"},"payload":"'
        + base64.b64encode(os.urandom(64 << 20))
        + b'"}'
    )
    async with LagTicker() as ticker:
        r = await client.post(
            "/api/v1/messages", content=body, headers={"content-type": "application/json"}
        )
    assert r.status_code == 201, r.text
    assert ticker.max_gap < MAX_LAG, f"the loop stalled {ticker.max_gap:.3f} s"
