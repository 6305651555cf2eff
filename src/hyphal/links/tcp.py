"""The TCP link transport: asyncio's ``create_server``/``create_connection`` behind the seam."""

from __future__ import annotations

import asyncio

from hyphal.links.transport import Listener, ProtocolFactory


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


class TcpTransport:
    """Links over TCP (the default)."""

    async def listen(self, address: str, port: int, factory: ProtocolFactory) -> Listener:
        host: str | None = None if address in ("::", "") else address
        server = await asyncio.get_running_loop().create_server(
            factory, host=host, port=port, reuse_address=True
        )
        sockets = server.sockets
        return TcpListener(server, sockets[0].getsockname()[1] if sockets else port)

    async def dial(self, host: str, port: int, protocol: asyncio.BufferedProtocol) -> None:
        await asyncio.get_running_loop().create_connection(lambda: protocol, host, port)
