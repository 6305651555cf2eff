"""The TCP link transport: asyncio's ``create_server``/``create_connection`` behind the seam.

A transport built with a :class:`hyphal.roles.TcpKeepalive` turns kernel keepalive on for every
connection it dials (clients use it so their NAT mappings survive a stalled process).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

from hyphal.links.transport import Listener, ProtocolFactory

if TYPE_CHECKING:
    from hyphal.roles import TcpKeepalive

log = logging.getLogger("hyphal.links")


class TcpListener:
    """A listening TCP server."""

    def __init__(self, server: asyncio.base_events.Server, port: int) -> None:
        self._server = server
        self._port = port

    @property
    def port(self) -> int:
        return self._port

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every bound socket as ``host:port`` / ``[v6]:port`` (for the start-up log)."""
        out: list[str] = []
        for sock in self._server.sockets:
            host, port = sock.getsockname()[:2]
            out.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        return tuple(out)

    def close(self) -> None:
        self._server.close()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()


def set_keepalive(sock: Any, keepalive: TcpKeepalive) -> bool:
    """Turn TCP keepalive on for ``sock`` with the given timers; False if the OS refused."""
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (
        ("TCP_KEEPIDLE", keepalive.idle),
        ("TCP_KEEPINTVL", keepalive.interval),
        ("TCP_KEEPCNT", keepalive.count),
    ):
        if hasattr(socket, name):  # Linux has all three; macOS names the first TCP_KEEPALIVE
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    try:
        for level, option, value in options:
            sock.setsockopt(level, option, value)
    except OSError as exc:
        log.warning("cannot enable TCP keepalive on a peer link: %s", exc)
        return False
    return True


class TcpTransport:
    """Links over TCP (the default)."""

    def __init__(self, keepalive: TcpKeepalive | None = None) -> None:
        self.keepalive = keepalive

    async def listen(self, address: str, port: int, factory: ProtocolFactory) -> Listener:
        host: str | None = None if address in ("::", "") else address
        server = await asyncio.get_running_loop().create_server(
            factory, host=host, port=port, reuse_address=True
        )
        sockets = server.sockets
        return TcpListener(server, sockets[0].getsockname()[1] if sockets else port)

    async def dial(self, host: str, port: int, protocol: asyncio.BufferedProtocol) -> None:
        transport, _ = await asyncio.get_running_loop().create_connection(
            lambda: protocol, host, port
        )
        if self.keepalive is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                set_keepalive(sock, self.keepalive)
