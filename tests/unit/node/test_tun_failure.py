"""Issue 8 item 9: a TUN that fails to read is closed once, with one log line, not polled forever."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.node import Node
from hyphal.testing.memtun import MemTunPair


async def test_tun_read_error_closes_the_tun_once_and_the_node_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pair = MemTunPair()
    config = NodeConfig(listen_address="127.0.0.1", tcp_listen_port=0, tun_name="memtun0")
    node = Node(config, NodeIdentity.generate(), tun_factory=pair.open)
    await node.start()
    try:
        assert node.tun_port.tun is pair.opened
        caplog.set_level(logging.ERROR)
        pair.close()  # the device is gone: every read from now on fails
        for _ in range(20):  # many loop turns: a still-registered reader would fire each time
            await asyncio.sleep(0.005)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage() for r in errors] == [
            "TUN memtun0 failed, closing it: [Errno 5] memory TUN read failed: the other end is gone"
        ]
        assert node.tun_port.tun is None and node.tun_port.bridge is None
        assert node.peers.listen_port  # still listening for peers
    finally:
        await node.stop()
