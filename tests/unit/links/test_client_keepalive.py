"""Issue 10, roles: links a client dials carry TCP keepalive (NAT mappings outlive a stall)."""

from __future__ import annotations

import asyncio
import socket

import uvloop

from hyphal.links.tcp import TcpTransport, set_keepalive
from hyphal.roles import CLIENT_KEEPALIVE, Role, TcpKeepalive


class Probe(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None
        self.buffer = bytearray(64)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.buffer)

    def buffer_updated(self, nbytes: int) -> None:
        pass


async def dialed_options(transport: TcpTransport) -> tuple[int, int, int, int]:
    server = await asyncio.get_running_loop().create_server(asyncio.Protocol, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        probe = Probe()
        await transport.dial("127.0.0.1", port, probe)
        assert probe.transport is not None
        sock = probe.transport.get_extra_info("socket")
        values = (
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        )
        probe.transport.close()
        return values
    finally:
        server.close()
        await server.wait_closed()


async def test_client_dials_set_keepalive_with_its_timers() -> None:
    assert Role.CLIENT.keepalive == CLIENT_KEEPALIVE
    on, idle, interval, count = await dialed_options(TcpTransport(Role.CLIENT.keepalive))
    assert on == 1
    assert (idle, interval, count) == (
        CLIENT_KEEPALIVE.idle,
        CLIENT_KEEPALIVE.interval,
        CLIENT_KEEPALIVE.count,
    )


async def test_peer_dials_leave_keepalive_off() -> None:
    assert Role.PEER.keepalive is None
    on, *_ = await dialed_options(TcpTransport(Role.PEER.keepalive))
    assert on == 0


def test_refused_option_is_reported_not_raised() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert set_keepalive(sock, TcpKeepalive(15, 5, 3))
        assert not set_keepalive(sock, TcpKeepalive(-1, 5, 3))  # the kernel refuses idle < 1


def test_keepalive_under_uvloop_the_daemons_loop() -> None:
    on, idle, _, _ = uvloop.run(dialed_options(TcpTransport(CLIENT_KEEPALIVE)))
    assert (on, idle) == (1, CLIENT_KEEPALIVE.idle)
