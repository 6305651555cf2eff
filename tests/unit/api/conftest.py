"""A real in-process node (no TUN, no peers, listening on loopback only) and its API app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.node import Node


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    config = NodeConfig(
        key_file=tmp_path / "key",
        no_tun=True,
        tcp_listen_port=0,
        listen_address="::1",
        api_addr="127.0.0.1:8989",
    ).validate()
    started = Node(config, NodeIdentity.generate())
    await started.start()
    try:
        yield started
    finally:
        await started.stop()
