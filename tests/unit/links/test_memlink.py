"""Real PeerManagers and PeerLinks with real handshakes over the in-memory transport."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from hyphal.identity import NodeIdentity
from hyphal.links.endpoint import Endpoint
from hyphal.links.manager import PeerManager
from hyphal.testing.memlink import MemoryNetwork
from hyphal.wire.link import FRAME_CONTROL


class Owner:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def link_up(self, link: object) -> None:
        pass

    def link_frame(self, link: object, frame_type: int, body: memoryview) -> None:
        self.frames.append(bytes(body))

    def link_down(self, link: object, reason: str) -> None:
        pass


@contextlib.asynccontextmanager
async def node(net: MemoryNetwork, host: str, *dial: str) -> AsyncIterator[PeerManager]:
    """A PeerManager on `host` listening on port 9651 and dialing `dial`; adding a transport
    to a node is just this `transport=` argument."""
    mgr = PeerManager(
        NodeIdentity.generate(),
        Owner(),
        network_name=None,
        network_key=None,
        transport=net.transport(host),
    )
    await mgr.start("::", 9651, tuple(Endpoint("tcp", h, 9651) for h in dial))
    try:
        yield mgr
    finally:
        await mgr.close()


async def until(predicate: object) -> None:
    assert callable(predicate)
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_two_managers_link_up_and_exchange_frames() -> None:
    net = MemoryNetwork()
    async with node(net, "a") as a, node(net, "b", "a") as b:
        await until(lambda: len(a.links) == 1 and len(b.links) == 1)
        (on_b,) = b.links.values()
        (on_a,) = a.links.values()
        assert on_b.remote_public_key == a.identity.public_key
        assert on_b.send_frame(FRAME_CONTROL, b"hello over memory")
        on_b.flush()
        assert isinstance(a.owner, Owner)
        owner = a.owner
        await until(lambda: owner.frames == [b"hello over memory"])
        assert on_a.remote_address.startswith("b:")


async def test_three_managers_form_a_triangle_without_duplicates() -> None:
    net = MemoryNetwork()
    async with (
        node(net, "a", "b", "c") as a,
        node(net, "b", "c", "a") as b,
        node(net, "c", "a", "b") as c,
    ):
        await until(lambda: all(len(m.links) == 2 for m in (a, b, c)))
        await asyncio.sleep(0.3)  # the dedupe has settled: still one link per pair
        assert all(len(m.links) == 2 for m in (a, b, c))
        assert {bytes(k) for k in a.by_key} == {b.identity.public_key, c.identity.public_key}


async def test_dials_to_a_host_nobody_listens_on_leave_nothing_behind() -> None:
    net = MemoryNetwork()
    async with node(net, "a", "nowhere") as a:
        (peer,) = a.static.values()
        await until(lambda: peer.backoff.failures >= 3)
        assert len(a.all_links) <= 1
