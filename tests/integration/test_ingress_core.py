"""The ingress listener against real TCP backends on loopback: the PROXY header's exact fields,
the order (header before payload), failover to the next instance, half-close, the per-client
limit and the idle timeout, on asyncio's loop and on uvloop. The directory is a fixed list of
instances (the seam's Protocol)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_network
from typing import Any

import pytest
import uvloop

from hyphal.ingress.limits import Limits
from hyphal.ingress.listener import IngressListener
from hyphal.ingress.policy import PolicyRouting
from hyphal.ingress.proxy import ProxyDecoder, ProxyHeader, encode_v1
from hyphal.ingress.spec import IngressSpec, unwrap_from_dict
from hyphal.ingress.unwrap import UnwrapListener
from hyphal.services.directory import Instance, Proto

Body = Callable[[], Coroutine[Any, Any, None]]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Body], None]:
    """Runs a test body on asyncio's loop or on uvloop (the daemon's; its transports differ in
    detail, e.g. when reading starts)."""

    def runner(body: Body) -> None:
        if request.param == "uvloop":
            uvloop.run(body())
        else:
            asyncio.run(body())

    return runner


class FixedDirectory:
    """The directory's Protocol over a list the test sets (nearest first)."""

    def __init__(self, instances: list[Instance]) -> None:
        self.list = instances

    def instances(self, service: str, proto: Proto = "tcp") -> list[Instance]:
        return [i for i in self.list if i.service == service and i.proto == proto]

    def choose(self, service: str, proto: Proto = "tcp") -> Instance | None:
        found = self.instances(service, proto)
        return found[0] if found else None

    def address_of(self, service: str) -> IPv6Address:
        return IPv6Address("fd00::1")

    def service_at(self, address: IPv6Address) -> str | None:
        return None

    def is_instance(self, service: str, public_key: bytes) -> bool:
        return any(i.public_key == public_key for i in self.list)

    def local_services(self) -> list[str]:
        return []


def instance(port: int, key: int = 1) -> Instance:
    return Instance("web", bytes([key]) * 32, IPv6Address("::1"), port, "tcp", 1, key)


class Backend:
    """A real TCP server on ::1 that decodes the PROXY header, then echoes until EOF, then
    sends ``b"bye"`` and closes."""

    def __init__(self) -> None:
        self.headers: list[ProxyHeader] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.serve, "::1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = ProxyDecoder()
        header = None
        while header is None:
            data = await reader.read(1)
            if not data:
                writer.close()
                return
            header = decoder.feed(data)
        self.headers.append(header)
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write(b"bye")
        await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def backend_server() -> AsyncIterator[tuple[Backend, int]]:
    b = Backend()
    port = await b.start()
    try:
        yield b, port
    finally:
        assert b.server is not None
        b.server.close()


async def start(spec: IngressSpec, directory: FixedDirectory) -> tuple[IngressListener, int]:
    listener = IngressListener(spec, directory)
    await listener.start()
    assert listener.bound is not None
    return listener, listener.bound[1]


async def closed(reader: asyncio.StreamReader) -> bool:
    """True once the peer closed or reset the connection without sending anything."""
    try:
        return await asyncio.wait_for(reader.read(), 10) == b""
    except ConnectionResetError:
        return True


def closed_port() -> int:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("mode", ["v2", "v1"])
def test_header_fields_then_payload_and_half_close(run: Callable[[Body], None], mode: str) -> None:
    async def body() -> None:
        async with backend_server() as (b, port):
            listener, lport = await start(
                IngressSpec(("127.0.0.1", 0), "web", mode),  # type: ignore[arg-type]
                FixedDirectory([instance(port)]),
            )
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", lport)
                cport = writer.get_extra_info("sockname")[1]
                writer.write(b"hello " * 1000)
                writer.write_eof()  # half-close at once: the reply must still come back
                got = await asyncio.wait_for(reader.read(), 10)
                assert got == b"hello " * 1000 + b"bye"
                writer.close()
                (header,) = b.headers
                assert header.version == int(mode[1])
                assert header.src == (IPv4Address("127.0.0.1"), cport)
                # the dialled address, not the instance's ::1
                assert header.dst == (IPv4Address("127.0.0.1"), lport)
                assert listener.counters["proxied"] == 1
            finally:
                await listener.stop()

    run(body)


def test_next_instance_when_the_nearest_refuses(run: Callable[[Body], None]) -> None:
    async def body() -> None:
        async with backend_server() as (b, port):
            directory = FixedDirectory([instance(closed_port(), 1), instance(port, 2)])
            listener, lport = await start(IngressSpec(("::1", 0), "web"), directory)
            try:
                reader, writer = await asyncio.open_connection("::1", lport)
                writer.write(b"x")
                writer.write_eof()
                assert await asyncio.wait_for(reader.read(), 10) == b"xbye"
                writer.close()
                assert listener.counters["connect-failed"] == 1
                assert listener.last_instance is not None and listener.last_instance.metric == 2
                assert b.headers[0].src is not None and b.headers[0].src[0] == IPv6Address("::1")
            finally:
                await listener.stop()

    run(body)


def test_no_instance_closes_the_client(run: Callable[[Body], None]) -> None:
    async def body() -> None:
        listener, lport = await start(IngressSpec(("127.0.0.1", 0), "web"), FixedDirectory([]))
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", lport)
            assert await closed(reader)
            writer.close()
            assert listener.counters["no-instance"] == 1
        finally:
            await listener.stop()

    run(body)


def test_per_client_limit_and_idle_timeout(run: Callable[[Body], None]) -> None:
    async def body() -> None:
        async with backend_server() as (_, port):
            limits = replace(Limits(), max_per_client=2, idle_timeout=1.0)
            listener, lport = await start(
                IngressSpec(("127.0.0.1", 0), "web", "v2", limits),
                FixedDirectory([instance(port)]),
            )
            try:
                held = [await asyncio.open_connection("127.0.0.1", lport) for _ in range(2)]
                async with asyncio.timeout(10):
                    while listener.counters["proxied"] < 2:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                r3, w3 = await asyncio.open_connection("127.0.0.1", lport)
                assert await closed(r3)
                w3.close()
                assert listener.counters["refused-per-client"] == 1
                for reader, writer in held:  # silent clients: closed by the idle timeout
                    assert await closed(reader)
                    writer.close()
                async with asyncio.timeout(10):
                    while listener.admission.open:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                assert listener.counters["closed-idle"] == 2
            finally:
                await listener.stop()

    run(body)


class EchoPeer:
    """A plain TCP backend (no PROXY) that echoes, and remembers its peers' addresses."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername")[:2])
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()


def test_unwrap_plain_header_rest_allow_and_garbage(run: Callable[[Body], None]) -> None:
    """The unwrap without root (transparent off): the bytes after the header reach the backend
    first, a sender outside ``allow`` and a connection without a header are refused."""

    async def body() -> None:
        echo = EchoPeer()
        server = await asyncio.start_server(echo.serve, "127.0.0.1", 0)
        bport = server.sockets[0].getsockname()[1]
        routing = PolicyRouting()
        spec = unwrap_from_dict(
            {"listen": "127.0.0.1:1", "backend": f"127.0.0.1:{bport}", "transparent": False}
        )
        listener = UnwrapListener(replace(spec, listen=("127.0.0.1", 0)), routing)
        closed_listener = UnwrapListener(
            replace(spec, listen=("127.0.0.1", 0), allow=(ip_network("10.0.0.0/8"),)), routing
        )
        await listener.start()
        await closed_listener.start()
        try:
            assert listener.bound is not None and closed_listener.bound is not None
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.bound[1])
            header = encode_v1((IPv4Address("192.0.2.7"), 4000), (IPv4Address("192.0.2.1"), 6667))
            writer.write(header + b"NICK a\r\n")  # payload in the same segment as the header
            assert await reader.readexactly(8) == b"NICK a\r\n"
            writer.write_eof()
            assert await reader.read() == b""
            writer.close()
            assert listener.counters["untransparent"] == 1 and len(echo.peers) == 1

            r2, w2 = await asyncio.open_connection("127.0.0.1", listener.bound[1])
            w2.write(b"NICK b\r\nUSER b 0 * :b\r\n")  # no header: refused, never forwarded
            assert await closed(r2)
            w2.close()
            assert listener.counters["header-invalid"] == 1 and len(echo.peers) == 1

            r3, w3 = await asyncio.open_connection("127.0.0.1", closed_listener.bound[1])
            w3.write(header)
            assert await closed(r3)
            w3.close()
            assert closed_listener.counters["refused-sender"] == 1 and len(echo.peers) == 1
        finally:
            await listener.stop()
            await closed_listener.stop()
            server.close()

    run(body)
