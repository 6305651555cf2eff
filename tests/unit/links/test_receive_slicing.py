"""Received frames are handled in slices: a read whose frames keep the loop busy longer than
SLICE_SECONDS pauses the link and lets timers and other links run before it goes on, and every
frame still arrives, in order, once."""

from __future__ import annotations

import asyncio
import time

from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.links.connection import SLICE_SECONDS
from hyphal.links.endpoint import Endpoint
from hyphal.node import Node

SLOW_FRAME = 0x7D  # a toy frame type registered on A only for this test
FRAMES = 40
HANDLER_SECONDS = 0.005


async def start_node(peer_port: int | None) -> Node:
    peers = () if peer_port is None else (Endpoint.parse(f"tcp://127.0.0.1:{peer_port}"),)
    config = NodeConfig(no_tun=True, listen_address="127.0.0.1", tcp_listen_port=0, peers=peers)
    node = Node(config, NodeIdentity.generate())
    await node.start()
    return node


async def test_a_slow_read_yields_to_timers_and_loses_no_frame() -> None:
    assert FRAMES * HANDLER_SECONDS > 4 * SLICE_SECONDS
    a = await start_node(None)
    b = await start_node(a.peers.listen_port)
    try:
        async with asyncio.timeout(10):
            while not a.peers.links or not b.peers.links:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        seen: list[int] = []
        timer_saw: list[int] = []

        def slow(frame: tuple[object, memoryview]) -> None:
            time.sleep(HANDLER_SECONDS)
            seen.append(frame[1][0])

        a.frames.register(SLOW_FRAME, slow)
        (b_to_a,) = b.peers.links.values()
        (a_to_b,) = a.peers.links.values()
        for i in range(FRAMES):
            b_to_a.send_frame(SLOW_FRAME, bytes([i]))
        b_to_a.flush()  # one record: A reads every frame at once
        loop = asyncio.get_running_loop()
        loop.call_later(0.001, lambda: timer_saw.append(len(seen)))
        async with asyncio.timeout(10):
            while len(seen) < FRAMES:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert seen == list(range(FRAMES))
        assert timer_saw and timer_saw[0] < FRAMES  # the timer ran between slices
        assert a.peers.links.get(a_to_b.id) is a_to_b  # and the link is still up, reading
        assert a_to_b._transport is not None and a_to_b._transport.is_reading()
    finally:
        await b.stop()
        await a.stop()
