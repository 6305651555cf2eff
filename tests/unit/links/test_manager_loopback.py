"""Real PeerManagers over loopback TCP: hardening (issue 8 items 2, 3, 9) and capabilities."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hyphal.crypto.session import INITIAL_BUFFER
from hyphal.identity import NodeIdentity
from hyphal.links import connection
from hyphal.links.backoff import Backoff
from hyphal.links.budget import HandshakeBudget
from hyphal.links.connection import MAX_BACKLOG, PeerLink
from hyphal.links.endpoint import Endpoint
from hyphal.links.manager import LinkKind, PeerManager, PeerState
from hyphal.testing.loopback import free_port
from hyphal.wire.link import FRAME_CONTROL


class Owner:
    """Records what the manager reports, like the node does."""

    def __init__(self) -> None:
        self.up: list[PeerLink] = []
        self.down: list[tuple[PeerLink, str]] = []

    def link_up(self, link: PeerLink) -> None:
        self.up.append(link)

    def link_frame(self, link: PeerLink, frame_type: int, body: memoryview) -> None:
        pass

    def link_down(self, link: PeerLink, reason: str) -> None:
        self.down.append((link, reason))


def closed_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    return free_port()


def fast_backoff() -> Backoff:
    return Backoff(base=0.005, cap=0.01)


@contextlib.asynccontextmanager
async def manager(**kwargs: Any) -> AsyncIterator[PeerManager]:
    mgr = PeerManager(
        NodeIdentity.generate(), Owner(), network_name=None, network_key=None, **kwargs
    )
    await mgr.start("127.0.0.1", 0, ())
    try:
        yield mgr
    finally:
        await mgr.close()


async def wait_for(predicate: object, seconds: float = 5.0) -> bool:
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return bool(predicate())


def generous_budget() -> HandshakeBudget:
    """A budget that admits every handshake these tests start (to test the other caps)."""
    return HandshakeBudget(time.monotonic, per_source_burst=1e6, global_burst=1e6)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# item 2: no state survives a failed dial -------------------------------------------------------


async def test_refused_dials_leave_no_links_behind() -> None:
    async with manager() as mgr:
        peer = mgr.add_static(Endpoint("tcp", "127.0.0.1", closed_port()))
        peer.backoff = fast_backoff()
        most = 0
        for _ in range(100):
            await asyncio.sleep(0.01)
            most = max(most, len(mgr.all_links))
        assert peer.backoff.failures > 10  # it really retried many times
        assert most <= 1  # at most the dial in flight


async def test_remove_static_cleans_up() -> None:
    async with manager() as mgr:
        endpoint = Endpoint("tcp", "127.0.0.1", closed_port())
        peer = mgr.add_static(endpoint)
        peer.backoff = fast_backoff()
        await asyncio.sleep(0.2)
        mgr.remove_static(endpoint)
        assert peer.task is not None
        with contextlib.suppress(asyncio.CancelledError):
            await peer.task
        assert mgr.all_links == set()
        assert mgr.static == {}


async def test_dial_loop_ends_when_its_peer_is_removed_even_if_the_cancel_is_lost() -> None:
    # A cancel that lands as the dial finishes can be swallowed; leaving `static` alone must
    # still end the loop (the CI hang this reproduces waited on the task for 300 s).
    async with manager() as mgr:
        endpoint = Endpoint("tcp", "127.0.0.1", closed_port())
        peer = mgr.add_static(endpoint)
        peer.backoff = fast_backoff()
        await asyncio.sleep(0.2)
        del mgr.static[endpoint]  # removed, with no cancel
        assert peer.task is not None
        await asyncio.wait_for(peer.task, 5)
        assert mgr.all_links == set()


# item 9: the dial task survives unexpected exceptions ------------------------------------------


async def test_dial_loop_survives_unexpected_exceptions() -> None:
    async with manager() as mgr:
        # An embedded NUL makes the resolver raise ValueError, not OSError.
        peer = mgr.add_static(Endpoint("tcp", "127.0.0.1\x00", 9))
        peer.backoff = fast_backoff()
        await asyncio.sleep(0.3)
        assert peer.task is not None and not peer.task.done()
        assert "ValueError" in peer.last_error
        assert mgr.dial_errors >= 3  # it kept retrying
        assert len(mgr.all_links) <= 1  # at most the dial in flight


# item 2: inbound caps ----------------------------------------------------------------------------


async def idle_sockets(port: int, count: int, source: str = "127.0.0.1") -> list[socket.socket]:
    """`count` connected sockets from loopback address `source` that never send a byte."""
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((source, 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        socks.append(sock)
    return socks


async def closed_by_server(socks: list[socket.socket], seconds: float) -> int:
    """How many of `socks` the server closed (EOF or reset) within `seconds`."""
    loop = asyncio.get_running_loop()

    async def drained(sock: socket.socket) -> bool:
        try:
            while await loop.sock_recv(sock, 65536):
                pass
        except ConnectionError:
            pass
        return True

    results = await asyncio.gather(
        *(asyncio.wait_for(drained(s), seconds) for s in socks), return_exceptions=True
    )
    return sum(1 for r in results if r is True)


async def test_over_cap_inbound_sockets_are_aborted_at_once() -> None:
    async with manager(
        max_inbound_handshakes=64,
        max_handshakes_per_source=1000,
        handshake_budget=generous_budget(),
    ) as mgr:
        fds_before = open_fds()
        socks = await idle_sockets(mgr.listen_port, 80)
        try:
            assert await closed_by_server(socks, 1.0) == 80 - 64
            assert mgr.refused_inbound == 80 - 64
            # the server holds one fd per admitted socket, none for refused ones
            assert open_fds() - fds_before <= 80 + 64
            assert len(mgr.all_links) == 64
        finally:
            for sock in socks:
                sock.close()


async def test_inbound_handshakes_are_capped_per_source() -> None:
    async with manager(max_handshakes_per_source=4, handshake_budget=generous_budget()) as mgr:
        socks = await idle_sockets(mgr.listen_port, 10)
        other = await idle_sockets(mgr.listen_port, 1, source="127.0.0.2")
        try:
            assert await closed_by_server(socks, 1.0) == 6
            assert await closed_by_server(other, 0.3) == 0  # another source still gets in
        finally:
            for sock in socks + other:
                sock.close()


async def test_established_links_are_capped() -> None:
    async with manager(max_links=1) as hub, manager() as b, manager() as c:
        for spoke in (b, c):
            spoke.add_static(Endpoint("tcp", "127.0.0.1", hub.listen_port)).backoff = fast_backoff()
        assert await wait_for(lambda: len(hub.links) == 1)
        await asyncio.sleep(0.5)
        assert len(hub.links) == 1
        assert hub.refused_inbound > 0


# item 3: hard cap on a link's backlog, control frames included ---------------------------------


async def test_peer_that_never_reads_is_closed_before_the_backlog_passes_the_cap() -> None:
    async with manager() as victim, manager() as reader:
        reader.add_static(Endpoint("tcp", "127.0.0.1", victim.listen_port))
        assert await wait_for(lambda: len(victim.links) == 1 and len(reader.links) == 1)
        (stuck,) = reader.links.values()
        assert stuck._transport is not None
        stuck._transport.pause_reading()  # the neighbour stops reading for good
        (link,) = victim.links.values()
        assert link._transport is not None
        body = bytes(60_000)
        largest = 0
        for i in range(2000):  # up to 120 MB of control frames
            if link.closed:
                break
            link.send_frame(FRAME_CONTROL, body)
            link.flush()
            if link._transport is not None:
                largest = max(largest, link._transport.get_write_buffer_size())
            if i % 16 == 0:
                await asyncio.sleep(0)
        assert link.closed
        assert largest <= MAX_BACKLOG + len(body) + 64
        assert await wait_for(lambda: victim.backlog_closes == 1)
        assert victim.links == {}


# item 2: idle links give their large buffers back ----------------------------------------------


async def test_idle_links_give_their_large_buffers_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "IDLE_TRIM_SECONDS", 0.05)
    async with manager() as a, manager() as b:
        b.add_static(Endpoint("tcp", "127.0.0.1", a.listen_port))
        assert await wait_for(lambda: len(a.links) == 1 and len(b.links) == 1)
        (sender,) = b.links.values()
        (receiver,) = a.links.values()
        sender.send_frame(FRAME_CONTROL, bytes((1 << 20) - 4))  # one full 1 MiB record
        sender.flush()
        assert await wait_for(lambda: receiver.rx_bytes > 1 << 20)
        assert receiver.buffer_bytes > 2 * INITIAL_BUFFER
        assert await wait_for(lambda: receiver.buffer_bytes <= INITIAL_BUFFER)
        assert await wait_for(lambda: sender.buffer_bytes <= INITIAL_BUFFER)
        assert sender.send_frame(FRAME_CONTROL, b"still works")  # reallocates on demand
        sender.flush()
        assert not sender.closed and not receiver.closed


# item 2: X25519 work for unverified sources only within a budget -------------------------------


async def test_handshake_flood_from_one_source_is_rate_limited() -> None:
    async with manager() as mgr:  # the default budget: burst of 8 per source
        for _ in range(30):
            (sock,) = await idle_sockets(mgr.listen_port, 1, source="127.0.0.3")
            sock.close()  # never counts as "in progress" for long: only the rate limit applies
        assert await wait_for(lambda: mgr.refused_inbound >= 20)
        other = await idle_sockets(mgr.listen_port, 1, source="127.0.0.4")
        try:
            assert await closed_by_server(other, 0.3) == 0  # an honest source still gets in
        finally:
            other[0].close()


# issue 9: capabilities ---------------------------------------------------------------------------


async def test_both_ends_learn_each_others_features() -> None:
    async with manager(features=0b101) as a, manager(features=0b11) as b:
        b.add_static(Endpoint("tcp", "127.0.0.1", a.listen_port))
        assert await wait_for(lambda: len(a.links) == 1 and len(b.links) == 1)
        (on_a,) = a.links.values()
        (on_b,) = b.links.values()
        assert on_a.features == 0b11
        assert on_b.features == 0b101


# issue 9: typed rows ---------------------------------------------------------------------------


async def test_peer_infos_are_typed() -> None:
    async with manager() as a, manager() as b:
        endpoint = Endpoint("tcp", "127.0.0.1", a.listen_port)
        b.add_static(endpoint)
        assert await wait_for(lambda: len(a.links) == 1 and len(b.links) == 1)
        (static,) = b.peer_infos()
        assert (static.kind, static.state) == (LinkKind.STATIC, PeerState.ALIVE)
        assert static.socket_addr == endpoint.socket_addr and static.link is not None
        (inbound,) = a.peer_infos()
        assert (inbound.kind, inbound.state) == (LinkKind.INBOUND, PeerState.ALIVE)
