"""In-memory link transport: real PeerManagers and PeerLinks in one process, no sockets or root.

Like wireguard-go's ``conn/bindtest``: a ``MemoryNetwork`` hands each node a transport (one per
host name). Dialing a listening (host, port) creates two connected ``MemoryPipe`` ends that feed
bytes straight into the other end's ``BufferedProtocol`` on later loop turns. Pipes keep TCP's
semantics that links rely on: ordered bytes, a write backlog that grows while the reader is
paused (with ``pause_writing`` past the high-water mark), graceful ``close`` after the backlog
drains, ``abort`` at once, and ``connection_lost`` on both ends.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Any

from hyphal.links.transport import Listener, ProtocolFactory

Address = tuple[str, int]


class MemoryPipe(asyncio.Transport):
    """One end of an in-memory connection."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol: asyncio.BufferedProtocol,
        local: Address,
        remote: Address,
    ) -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self.peer: MemoryPipe | None = None
        self._extra: dict[str, Any] = {"peername": remote, "sockname": local, "socket": None}
        self._queue: deque[bytes] = deque()  # written here, not yet delivered to the peer
        self._queued = 0
        self._high, self._low = 64 * 1024, 16 * 1024
        self._writing_paused = False
        self._reading_paused = False
        self._closing = False
        self._lost = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 64 * 1024 if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_size(self) -> int:
        return self._queued

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._lost or not data:
            return
        self._queue.append(bytes(data))
        self._queued += len(data)
        self._loop.call_soon(self._pump)
        if not self._writing_paused and self._queued > self._high:
            self._writing_paused = True
            self._protocol.pause_writing()

    def _pump(self) -> None:
        """Deliver this end's backlog into the peer's protocol, as far as it reads."""
        peer = self.peer
        if self._lost or peer is None or peer._lost:
            return
        while self._queue and not peer._reading_paused:
            data = self._queue[0]
            with memoryview(peer._protocol.get_buffer(len(data))) as space:
                n = min(len(space), len(data))
                space[:n] = data[:n]
            if n == len(data):
                self._queue.popleft()
            else:
                self._queue[0] = data[n:]
            self._queued -= n
            peer._protocol.buffer_updated(n)
            if self._lost or peer._lost:
                return
        if self._writing_paused and self._queued <= self._low:
            self._writing_paused = False
            self._protocol.resume_writing()
        if self._closing and not self._queue:
            self._finish()

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        self._reading_paused = False
        if self.peer is not None:
            self._loop.call_soon(self.peer._pump)

    def is_reading(self) -> bool:
        return not self._reading_paused

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        if self._closing or self._lost:
            return
        self._closing = True
        self._loop.call_soon(self._pump if self._queue else self._finish)

    def abort(self) -> None:
        self._queue.clear()
        self._queued = 0
        self._finish()

    def _finish(self) -> None:
        if self._lost:
            return
        self._lost = True
        self._loop.call_soon(self._protocol.connection_lost, None)
        if self.peer is not None:
            self._loop.call_soon(self.peer._finish)


class MemoryListener:
    """A listening (host, port) on a MemoryNetwork."""

    def __init__(self, network: MemoryNetwork, address: Address) -> None:
        self._network = network
        self._address = address

    @property
    def port(self) -> int:
        return self._address[1]

    def close(self) -> None:
        self._network.listeners.pop(self._address, None)

    async def wait_closed(self) -> None:
        return None


class MemoryTransport:
    """One node's link transport on a MemoryNetwork, at host name `host`."""

    def __init__(self, network: MemoryNetwork, host: str) -> None:
        self._network = network
        self.host = host

    async def listen(self, address: str, port: int, factory: ProtocolFactory) -> Listener:
        bound = (self.host, port or self._network.next_port())
        if bound in self._network.listeners:
            raise OSError(f"address {bound} already in use")
        self._network.listeners[bound] = factory
        return MemoryListener(self._network, bound)

    async def dial(self, host: str, port: int, protocol: asyncio.BufferedProtocol) -> None:
        factory = self._network.listeners.get((host, port))
        if factory is None:
            raise ConnectionRefusedError(f"nothing listens on {host}:{port}")
        loop = asyncio.get_running_loop()
        local = (self.host, self._network.next_port())
        client = MemoryPipe(loop, protocol, local, (host, port))
        server = MemoryPipe(loop, factory(), (host, port), local)
        client.peer, server.peer = server, client
        server._protocol.connection_made(server)
        protocol.connection_made(client)


class MemoryNetwork:
    """Hosts that reach each other in memory; `transport(host)` is one node's transport."""

    def __init__(self) -> None:
        self.listeners: dict[Address, ProtocolFactory] = {}
        self._ports = itertools.count(40000)

    def next_port(self) -> int:
        return next(self._ports)

    def transport(self, host: str) -> MemoryTransport:
        return MemoryTransport(self, host)
