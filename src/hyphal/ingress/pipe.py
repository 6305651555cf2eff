"""A transport-level splice: two asyncio transports wired to each other through protocols.

The fast path for the public ingress: each chunk a transport reads is handed to the other
transport's ``write`` in the same callback (no stream buffers, no coroutine switch per chunk).
Backpressure: when one transport's write buffer passes its high-water mark, asyncio calls
``pause_writing`` on its protocol and we pause reading from the other transport, until
``resume_writing``. EOF from one side becomes ``write_eof`` (half-close) on the other; both EOFs
close the pair; a lost connection aborts the other side; no byte either way for the idle timeout
aborts both. Bytes are never looked at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from hyphal.ingress.splice import SpliceResult


class Side(asyncio.Protocol):
    """One end of a :class:`Pipe` (the client's or the backend's connection)."""

    def __init__(self, pipe: Pipe, up: bool) -> None:
        self.pipe = pipe
        self.up = up
        """True for the client side (its bytes go up, to the backend)."""
        self.transport: asyncio.Transport | None = None
        self.eof = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.pipe.forward(self, data)

    def eof_received(self) -> bool:
        return self.pipe.eof(self)

    def pause_writing(self) -> None:
        other = self.pipe.other(self).transport
        if other is not None and not other.is_closing():
            other.pause_reading()

    def resume_writing(self) -> None:
        other = self.pipe.other(self).transport
        if other is not None and not other.is_closing():
            other.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.pipe.lost(self, exc)


class Pipe:
    """Client and backend sides; ``done`` resolves with the bytes and the reason at the end."""

    def __init__(
        self, idle_timeout: float, buffer_bytes: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.loop = loop
        self.idle_timeout = idle_timeout
        self.buffer_bytes = buffer_bytes
        self.client = Side(self, True)
        self.backend = Side(self, False)
        self.result = SpliceResult()
        self.done: asyncio.Future[SpliceResult] = loop.create_future()
        self.last = loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self.joined = False
        self.early = bytearray()

    def other(self, side: Side) -> Side:
        return self.backend if side is self.client else self.client

    def join(self) -> None:
        """Both transports are up: cap their buffers, start the idle timer, read the client."""
        self.joined = True
        for side in (self.client, self.backend):
            assert side.transport is not None
            side.transport.set_write_buffer_limits(
                high=self.buffer_bytes, low=self.buffer_bytes // 4
            )
        self.last = self.loop.time()
        self._arm(self.idle_timeout)
        if self.early:
            early, self.early = bytes(self.early), bytearray()
            self.forward(self.client, early)
        assert self.client.transport is not None and self.backend.transport is not None
        if self.client.eof:  # the client half-closed before we were connected: pass it on
            if self.backend.eof:
                self.finish("closed")
            elif self.backend.transport.can_write_eof():
                self.backend.transport.write_eof()
        else:
            self.client.transport.resume_reading()

    def forward(self, side: Side, data: bytes) -> None:
        if side.up and not self.joined:
            # uvloop may start reading after connection_made paused it: hold what the client
            # sends before the header is out (bounded: reading pauses again)
            self.early += data
            if side.transport is not None and len(self.early) >= self.buffer_bytes:
                side.transport.pause_reading()
            return
        target = self.other(side).transport
        if target is None or target.is_closing():
            return
        self.last = self.loop.time()
        target.write(data)
        if side.up:
            self.result.up += len(data)
        else:
            self.result.down += len(data)

    def eof(self, side: Side) -> bool:
        side.eof = True
        if side.up and not self.joined:
            return True  # passed on by join(), after the header
        other = self.other(side)
        if other.eof:
            self.finish("closed")
            return False
        target = other.transport
        if target is not None and not target.is_closing() and target.can_write_eof():
            target.write_eof()
        return True  # keep the transport: the other direction may still be talking

    def lost(self, side: Side, exc: Exception | None) -> None:
        if self.done.done():
            return
        clean = exc is None and side.eof and self.other(side).eof
        self.finish("closed" if clean else "reset")

    def _arm(self, delay: float) -> None:
        self._timer = self.loop.call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        if self.done.done():
            return
        left = self.last + self.idle_timeout - self.loop.time()
        if left > 0:
            self._arm(left)
            return
        self.finish("idle")

    def finish(self, reason: str) -> None:
        if self.done.done():
            return
        self.result.reason = reason
        if self._timer is not None:
            self._timer.cancel()
        for side in (self.client, self.backend):
            transport = side.transport
            if transport is None or transport.is_closing():
                continue
            if reason == "closed":
                transport.close()
            else:
                transport.abort()
        self.done.set_result(self.result)


def side_factory(side: Side) -> Callable[[], Side]:
    return lambda: side
