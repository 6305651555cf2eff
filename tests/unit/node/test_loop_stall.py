"""Issue 8 item 4: a stalled loop must not declare a neighbour dead whose hellos sit unread.

Two nodes over loopback, B on its own loop in another thread; A blocks 1.2 s (longer than the
1 s dead interval) inside a frame handler while B's hellos pile up in A's socket. A runs under
asyncio and under uvloop, which runs due timers before it polls sockets.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import TypeVar

import pytest
import uvloop

from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.links.endpoint import Endpoint
from hyphal.node import Node
from hyphal.routing.params import DEFAULT_PARAMS, RoutingParams

STALL = 1.2
T = TypeVar("T")
STALL_FRAME = 0x7E  # a toy frame type registered on A only for this test


async def start_node(peer_port: int | None, params: RoutingParams = DEFAULT_PARAMS) -> Node:
    peers = () if peer_port is None else (Endpoint.parse(f"tcp://127.0.0.1:{peer_port}"),)
    config = NodeConfig(no_tun=True, listen_address="127.0.0.1", tcp_listen_port=0, peers=peers)
    node = Node(config, NodeIdentity.generate(), params)
    await node.start()
    return node


async def stall_scenario() -> tuple[int, bool, float]:
    a = await start_node(None)
    b_loop = asyncio.new_event_loop()
    b_thread = threading.Thread(target=b_loop.run_forever, daemon=True)
    b_thread.start()

    def in_b(coro: Coroutine[None, None, T]) -> asyncio.Future[T]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, b_loop))

    # B really does hear nothing from A during the stall; its longer dead interval keeps it from
    # closing the link, so the test sees only what A decides.
    b = await in_b(start_node(a.peers.listen_port, replace(DEFAULT_PARAMS, dead_interval=5.0)))
    try:
        async with asyncio.timeout(10):
            while a.public_key_for_prefix(b.identity.address_bytes[:8]) is None:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        a.frames.register(STALL_FRAME, lambda frame: time.sleep(STALL))
        (a_to_b,) = a.peers.links.values()
        (b_to_a,) = b.peers.links.values()

        def send_stall_frame() -> None:
            b_to_a.send_frame(STALL_FRAME, b"")
            b_to_a.flush()

        b_loop.call_soon_threadsafe(send_stall_frame)
        await asyncio.sleep(STALL + 0.5)
        assert a.router is not None
        dead = a.router.counters["neighbours_dead"]
        return dead, a.peers.links.get(a_to_b.id) is a_to_b, a.loop_lag.max_lag()
    finally:
        await in_b(b.stop())
        b_loop.call_soon_threadsafe(b_loop.stop)
        b_thread.join()
        b_loop.close()
        await a.stop()


@pytest.mark.parametrize(
    "loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"]
)
def test_stall_in_a_frame_handler_kills_no_neighbour(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        dead, link_up, max_lag = runner.run(stall_scenario())
    assert dead == 0
    assert link_up
    assert max_lag >= STALL - 0.2  # the stall shows in hyphal_loop_lag_max_seconds
