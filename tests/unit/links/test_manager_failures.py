"""Real PeerManagers over loopback TCP: failures logged once then summarised, lastError filled,
self-connections given up, pinned keys enforced, and a clean close with no WARNING."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hyphal.identity import NodeIdentity
from hyphal.links.backoff import Backoff
from hyphal.links.endpoint import Endpoint
from hyphal.links.manager import PeerManager, PeerState

from .test_manager_loopback import Owner, closed_port, generous_budget, wait_for

FAST = {"misconfigured_backoff_cap": 0.02}


def fast_backoff() -> Backoff:
    return Backoff(base=0.005, cap=0.01)


@contextlib.asynccontextmanager
async def manager(
    name: str | None = None, key: bytes | None = None, **kwargs: Any
) -> AsyncIterator[PeerManager]:
    mgr = PeerManager(
        NodeIdentity.generate(), Owner(), network_name=name, network_key=key, **FAST, **kwargs
    )
    await mgr.start("127.0.0.1", 0, ())
    try:
        yield mgr
    finally:
        await mgr.close()


def warnings(caplog: pytest.LogCaptureFixture, needle: str = "") -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("hyphal") and needle in r.getMessage()
    ]


def dial(mgr: PeerManager, port: int, key: bytes | None = None) -> Endpoint:
    endpoint = Endpoint("tcp", "127.0.0.1", port, key)
    mgr.add_static(endpoint).backoff = fast_backoff()
    return endpoint


@pytest.mark.parametrize(
    ("dialer", "acceptor", "kind", "error"),
    [
        (("fleet", b"k" * 32), ("fleet", b"K" * 32), "wrong-network-key", "network key differs"),
        ((None, None), ("fleet", b"K" * 32), "network-mismatch", "we are on the public network"),
    ],
)
async def test_misconfigured_peer_warns_once_per_end_and_fills_last_error(
    caplog: pytest.LogCaptureFixture,
    dialer: tuple[str | None, bytes | None],
    acceptor: tuple[str | None, bytes | None],
    kind: str,
    error: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="hyphal")
    async with manager(*acceptor, handshake_budget=generous_budget()) as b, manager(*dialer) as a:
        endpoint = dial(a, b.listen_port)
        assert await wait_for(lambda: a.failures.failures(("dial", endpoint)) >= 10)
        peer = a.static[endpoint]
        assert peer.state is not PeerState.ALIVE
        assert peer.last_error is not None and error in peer.last_error
        info = a.peer_infos()[0]
        assert info.last_error is not None and kind in info.last_error
        assert peer.backoff.slow_cap == FAST["misconfigured_backoff_cap"]
    ours = warnings(caplog, kind)
    assert len(ours) == 2, ours  # one on each end, not one per retry
    assert any("peer tcp://127.0.0.1" in m for m in ours)  # the dialer's, naming the peer
    assert any("inbound connection from 127.0.0.1" in m for m in ours)  # the acceptor's


async def test_failures_are_summarised_not_silent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hyphal")
    async with manager() as a:
        a.failures.interval = 0.2
        endpoint = dial(a, closed_port())
        assert await wait_for(lambda: len(warnings(caplog, "still failing")) >= 2, 3.0)
        assert a.static[endpoint].last_error  # the OSError text
    first = warnings(caplog, "cannot connect to")
    assert "will retry with backoff" in first[0] and "still failing" not in first[0]
    summary = warnings(caplog, "still failing")[0]
    assert "attempts since" in summary


async def test_self_connection_is_given_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hyphal")
    async with manager() as a:
        endpoint = dial(a, a.listen_port)
        peer = a.static[endpoint]
        assert await wait_for(lambda: peer.task is not None and peer.task.done())
        assert peer.gave_up and peer.state is PeerState.DEAD
        assert peer.last_error is not None and "self-connection" in peer.last_error
        assert a.peer_infos()[0].state is PeerState.DEAD
    ours = warnings(caplog, "this node itself")
    assert len(ours) == 1 and "not dialing it again" in ours[0]
    assert warnings(caplog) == ours


async def test_pinned_peer_presenting_another_key_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="hyphal")
    async with manager(handshake_budget=generous_budget()) as b, manager() as a:
        other = NodeIdentity.generate().public_key
        endpoint = dial(a, b.listen_port, other)
        assert await wait_for(lambda: a.failures.failures(("dial", endpoint)) >= 5)
        assert a.links == {}  # never handed to the node
        assert isinstance(a.owner, Owner) and a.owner.up == []
        peer = a.static[endpoint]
        assert peer.last_error is not None and "pinned to" in peer.last_error
        assert peer.remote_public_key is None  # the impostor's key is not taken for the peer's
        assert a.peer_infos()[0].state is not PeerState.ALIVE
        refused = warnings(caplog, "pinned to")
        assert len(refused) == 1 and b.identity.public_key.hex()[:16] in refused[0]
        # pinned to the right key, the same endpoint connects
        a.remove_static(Endpoint("tcp", "127.0.0.1", b.listen_port))
        good = dial(a, b.listen_port, b.identity.public_key)
        assert await wait_for(lambda: a.static[good].state is PeerState.ALIVE)
        assert a.static[good].last_error == ""


async def test_clean_close_logs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hyphal")
    async with manager() as b:
        async with manager() as a:
            dial(a, b.listen_port)
            assert await wait_for(lambda: len(a.links) == 1 and len(b.links) == 1)
            caplog.clear()
        assert await wait_for(lambda: not b.links)
    assert warnings(caplog) == []
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "closed 1 peer link (node shutting down)" in infos
    assert any("closed: connection closed by peer" in m for m in infos)  # b saw a's goodbye


async def test_accept_side_lines_are_capped_per_minute_over_all_sources(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Many sources failing the handshake (a scan, or a flood from many addresses): at most
    ACCEPT_LINES_PER_MINUTE lines, and one WARNING saying the rest went to debug."""
    from hyphal.links import linklog

    caplog.set_level(logging.INFO, logger="hyphal")
    async with manager(handshake_budget=generous_budget()) as b:
        cap = linklog.ACCEPT_LINES_PER_MINUTE
        for _ in range(cap + 15):
            b.failures.succeeded(("accept", "127.0.0.1"))  # as if each came from a new address
            reader, writer = await asyncio.open_connection("127.0.0.1", b.listen_port)
            writer.write(b"GET / HTTP/1.1\r\n\r\n" + bytes(64))  # not hyphal: bad-magic
            await reader.read()  # b closes it
            writer.close()
        assert await wait_for(lambda: not b.all_links)
    lines = [r for r in caplog.records if "something that is not hyphal" in r.getMessage()]
    assert len(lines) == cap
    assert all(r.levelno == logging.INFO for r in lines)  # a scanner is not a warning
    assert len(warnings(caplog, "go to debug")) == 1
