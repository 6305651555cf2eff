"""The asyncio listeners on real loopback sockets: UDP, TCP framing and TCP's bounds."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from ipaddress import IPv6Address

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from hyphal.dns.core import DnsCore
from hyphal.dns.names import StaticNameBook
from hyphal.dns.server import DnsServer, TcpLimits

OWN = IPv6Address("4aa::1")


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    book = StaticNameBook("db1", OWN, [], lambda a: True)
    srv = DnsServer(
        DnsCore("hyphal.internal", book, time.monotonic()),
        time.monotonic,
        0,
        TcpLimits(per_source=2, idle_timeout=0.5, max_queries=3),
    )
    assert await srv.listen("127.0.0.1") == []
    yield srv
    await srv.close()


QUERY = dns.message.make_query("db1.hyphal.internal", "AAAA")


async def test_udp_and_tcp_answer(server: DnsServer) -> None:
    port = server.bound_port
    udp = await dns.asyncquery.udp(QUERY, "127.0.0.1", port=port, timeout=2)
    tcp = await dns.asyncquery.tcp(QUERY, "127.0.0.1", port=port, timeout=2)
    for reply in (udp, tcp):
        assert [r.address for r in reply.answer[0]] == [str(OWN)]
    assert server.core.counters["answered-udp"] == 1 and server.core.counters["answered-tcp"] == 1
    assert list(server.listening.values()) == ["listening", "listening"]


async def _frame(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> bytes:
    wire = QUERY.to_wire()
    writer.write(len(wire).to_bytes(2, "big") + wire)
    size = int.from_bytes(await reader.readexactly(2), "big")
    return await reader.readexactly(size)


async def test_tcp_pipelines_up_to_max_queries_then_closes(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
    for _ in range(3):
        assert dns.message.from_wire(await _frame(writer, reader)).answer
    assert await reader.read() == b""  # closed after max_queries
    writer.close()


async def test_tcp_idle_connection_is_closed(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
    writer.write(b"\x00")  # half a length prefix, then nothing
    async with asyncio.timeout(3):
        assert await reader.read() == b""
    assert server.counters["tcp-idle-closed"] == 1
    writer.close()


async def test_tcp_connections_per_source_are_bounded(server: DnsServer) -> None:
    held = [await asyncio.open_connection("127.0.0.1", server.bound_port) for _ in range(2)]
    await asyncio.sleep(0.05)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
    async with asyncio.timeout(2):
        assert await reader.read() == b""  # refused at accept
    assert server.counters["tcp-refused"] == 1
    for _, w in [*held, (reader, writer)]:
        w.close()


async def test_bind_error_is_clear_and_not_fatal(server: DnsServer) -> None:
    other = DnsServer(server.core, time.monotonic, server.bound_port)
    errors = await other.listen("127.0.0.1")
    assert errors and "cannot listen for DNS on udp 127.0.0.1:" in errors[0]
    assert "--dns-port" in errors[0]
    await other.close()


async def test_garbage_datagram_does_not_stop_the_server(server: DnsServer) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.sendto(b"\xff" * 3, ("127.0.0.1", server.bound_port))
    sock.close()
    reply = await dns.asyncquery.udp(QUERY, "127.0.0.1", port=server.bound_port, timeout=2)
    assert reply.rcode() == dns.rcode.NOERROR
