"""asyncio listeners for the DNS core: UDP datagrams and TCP with a two-byte length prefix.

Each listen address gets one UDP socket and one TCP listener. TCP is bounded the way a server
facing hostile clients must be: at most ``max_connections`` at once and ``per_source`` per
client address (more are closed at accept), ``idle_timeout`` seconds to send each query,
``max_queries`` per connection, and a connection whose reader stops draining our replies is
closed rather than buffered. Sockets bind with IP_FREEBIND so the TUN address can be bound
while the kernel is still installing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address
from typing import cast

from hyphal.dns.core import DnsCore

log = logging.getLogger("hyphal.dns")

_IP_FREEBIND = 15  # linux/in.h; honoured by IPv6 sockets too


@dataclass(frozen=True)
class TcpLimits:
    max_connections: int = 128
    per_source: int = 8
    idle_timeout: float = 10.0
    max_queries: int = 100
    max_write_buffer: int = 256 * 1024


class BindError(OSError):
    """A DNS listener could not open; the message says what to change."""


def bind_error_text(address: str, port: int, proto: str, exc: OSError) -> str:
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    if exc.errno == errno.EADDRINUSE:
        hint = (
            "another DNS server listens there; pick another port with --dns-port, "
            "or another loopback address with dns_loopback in the config file"
        )
    elif exc.errno == errno.EACCES:
        hint = "ports below 1024 need root or CAP_NET_BIND_SERVICE; or use --dns-port 5353"
    else:
        hint = "check the address, or turn the DNS server off with --no-dns"
    return f"cannot listen for DNS on {proto} {where}: {exc.strerror or exc} ({hint})"


def _socket(address: str, port: int, kind: socket.SocketKind) -> socket.socket:
    family = socket.AF_INET6 if ip_address(address).version == 6 else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_IP, _IP_FREEBIND, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, core: DnsCore, clock: Callable[[], float]) -> None:
        self.core, self.clock = core, clock
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is no subclass

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        reply = self.core.handle(data, str(addr[0]), self.clock())
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors for earlier replies
        log.debug("udp error: %s", exc)


class DnsServer:
    """UDP and TCP listeners on a set of addresses, all answered by one core."""

    def __init__(
        self,
        core: DnsCore,
        clock: Callable[[], float],
        port: int,
        limits: TcpLimits | None = None,
    ) -> None:
        self.core, self.clock, self.port = core, clock, port
        self.limits = limits or TcpLimits()
        self.counters: Counter[str] = Counter(
            {"tcp-connections": 0, "tcp-refused": 0, "tcp-idle-closed": 0, "tcp-bad-length": 0}
        )
        self.listening: dict[str, str] = {}  # "udp [addr]:port" -> "listening" or the error
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.Server] = []
        self._conns: set[asyncio.Task[None]] = set()
        self._per_source: Counter[str] = Counter()

    @property
    def bound_port(self) -> int:
        """The port actually bound (``port`` unless it was 0)."""
        for transport in self._udp:
            return int(transport.get_extra_info("sockname")[1])
        return self.port

    async def listen(self, address: str) -> list[str]:
        """Open UDP and TCP on ``address``; return the errors (empty when both listen)."""
        loop = asyncio.get_running_loop()
        errors: list[str] = []
        port = self.bound_port if self._udp else self.port
        for proto in ("udp", "tcp"):
            key = f"{proto} [{address}]:{port}" if ":" in address else f"{proto} {address}:{port}"
            try:
                if proto == "udp":
                    sock = _socket(address, port, socket.SOCK_DGRAM)
                    transport, _ = await loop.create_datagram_endpoint(
                        lambda: _Udp(self.core, self.clock), sock=sock
                    )
                    self._udp.append(transport)
                    port = int(sock.getsockname()[1])
                    key = key.rsplit(":", 1)[0] + f":{port}"
                else:
                    sock = _socket(address, port, socket.SOCK_STREAM)
                    server = await asyncio.start_server(
                        self._accept, sock=sock, limit=2 + 65535, backlog=64
                    )
                    self._tcp.append(server)
            except OSError as exc:
                text = bind_error_text(address, port, proto, exc)
                self.listening[key] = text
                errors.append(text)
                continue
            self.listening[key] = "listening"
        return errors

    async def close(self) -> None:
        for transport in self._udp:
            transport.close()
        for server in self._tcp:
            server.close()
        for task in list(self._conns):
            task.cancel()
        for server in self._tcp:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._udp.clear()
        self._tcp.clear()

    # TCP --------------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if peer else "?"
        limits = self.limits
        if (
            len(self._conns) >= limits.max_connections
            or self._per_source[source] >= limits.per_source
        ):
            self.counters["tcp-refused"] += 1
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self.counters["tcp-connections"] += 1
        self._conns.add(task)
        self._per_source[source] += 1
        try:
            await self._serve(reader, writer, source)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._conns.discard(task)
            self._per_source[source] -= 1
            if self._per_source[source] <= 0:
                del self._per_source[source]
            writer.transport.abort()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, source: str
    ) -> None:
        limits = self.limits
        for _ in range(limits.max_queries):
            try:
                async with asyncio.timeout(limits.idle_timeout):
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    if size < 12:
                        self.counters["tcp-bad-length"] += 1
                        return
                    message = await reader.readexactly(size)
            except TimeoutError:
                self.counters["tcp-idle-closed"] += 1
                return
            reply = self.core.handle(message, source, self.clock(), tcp=True)
            if reply is None:
                continue
            if writer.transport.get_write_buffer_size() > limits.max_write_buffer:
                return  # the client reads none of our answers: no unbounded buffering
            writer.write(len(reply).to_bytes(2, "big") + reply)
