"""The transport seam: how links get a byte pipe, kept apart from link semantics (PeerLink).

Like wireguard-go's ``conn.Bind``, a transport only opens pipes: it listens, handing each inbound
connection to a fresh protocol from the factory, and dials, connecting one given protocol. The
pipe is an ``asyncio`` transport driving an ``asyncio.BufferedProtocol`` (the ``PeerLink``), so
preamble, handshake and records never depend on what carries the bytes. TCP
(:mod:`hyphal.links.tcp`) is the first implementation; the in-memory fake is
:mod:`hyphal.testing.memlink`.

A transport's asyncio transport must support ``write``, ``close``, ``abort``, ``get_extra_info``
(``"peername"`` as ``(host, port)``; ``"socket"`` may be None), ``set_write_buffer_limits`` and
``get_write_buffer_size``, and call ``pause_writing``/``resume_writing`` and ``connection_lost``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

ProtocolFactory = Callable[[], asyncio.BufferedProtocol]


class Listener(Protocol):
    """An open listening endpoint."""

    @property
    def port(self) -> int: ...
    def close(self) -> None: ...
    async def wait_closed(self) -> None: ...


class LinkTransport(Protocol):
    """Opens byte pipes for links."""

    async def listen(self, address: str, port: int, factory: ProtocolFactory) -> Listener:
        """Accept connections on `address` (``"::"`` or ``""``: every address) and `port`."""
        ...

    async def dial(self, host: str, port: int, protocol: asyncio.BufferedProtocol) -> None:
        """Connect `protocol` to `host`:`port`; raises OSError when that fails."""
        ...
