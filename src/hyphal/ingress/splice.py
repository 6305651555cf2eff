"""Copies bytes both ways between two connected streams until both directions are done.

Each direction reads up to :data:`CHUNK` bytes and waits for the other side's write buffer to
drain below its limit before reading again, so a slow receiver slows the sender instead of
growing a buffer. An EOF in one direction is passed on as a half-close (``shutdown(SHUT_WR)``)
and the other direction carries on. An error on either side, or no byte in either direction for
the idle timeout, closes both. Bytes are never looked at.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import MutableMapping
from dataclasses import dataclass

CHUNK = 256 * 1024


@dataclass(slots=True)
class SpliceResult:
    up: int = 0
    """Bytes client -> backend."""
    down: int = 0
    """Bytes backend -> client."""
    reason: str = "closed"
    """closed (both sides finished), idle (timeout) or reset (an error on one side)."""


def bound_buffers(writer: asyncio.StreamWriter, buffer_bytes: int) -> None:
    """Cap the write buffer of ``writer``'s transport (drain() waits above it)."""
    transport = writer.transport
    if isinstance(transport, asyncio.WriteTransport):
        transport.set_write_buffer_limits(high=buffer_bytes, low=buffer_bytes // 4)


async def splice(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    backend: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    idle_timeout: float,
    counters: MutableMapping[str, int] | None = None,
) -> SpliceResult:
    """Copy until both directions end; always closes both writers. Returns bytes and reason."""
    loop = asyncio.get_running_loop()
    result = SpliceResult()
    last = [loop.time()]

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool) -> None:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                if writer.can_write_eof() and not writer.is_closing():
                    writer.write_eof()
                return
            last[0] = loop.time()
            writer.write(data)
            if up:
                result.up += len(data)
            else:
                result.down += len(data)
            await writer.drain()

    tasks = [
        asyncio.ensure_future(pump(client[0], backend[1], True)),
        asyncio.ensure_future(pump(backend[0], client[1], False)),
    ]
    try:
        pending = set(tasks)
        while pending:
            timeout = last[0] + idle_timeout - loop.time()
            if timeout <= 0:
                result.reason = "idle"
                break
            done, pending = await asyncio.wait(
                pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if any(t.exception() is not None for t in done):
                result.reason = "reset"
                break
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        for _, writer in (client, backend):
            if result.reason == "closed":
                writer.close()
            else:
                writer.transport.abort()
        if counters is not None:
            counters[f"closed-{result.reason}"] = counters.get(f"closed-{result.reason}", 0) + 1
            counters["bytes-up"] = counters.get("bytes-up", 0) + result.up
            counters["bytes-down"] = counters.get("bytes-down", 0) + result.down
    return result
