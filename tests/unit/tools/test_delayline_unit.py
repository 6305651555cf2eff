"""Unit tests of the delay-line TCP proxy on loopback (no namespaces needed).

Timing assertions are lower bounds only: the proxy must hold bytes at least as long as asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from hyphal.tools.delayline import DelayLine, format_hostport, main, parse_hostport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def echo_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo every chunk; on EOF, half-close back and stop."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[int]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield int(srv.sockets[0].getsockname()[1])
    finally:
        srv.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(srv.wait_closed(), 2)


@contextlib.asynccontextmanager
async def proxied(handler: Handler, **kwargs: float | int) -> AsyncIterator[DelayLine]:
    async with server(handler) as port:
        line = DelayLine(("127.0.0.1", 0), ("127.0.0.1", port), **kwargs)  # type: ignore[arg-type]
        async with line:
            yield line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[::]:9700", ("::", 9700)),
        ("[fd00::2]:9651", ("fd00::2", 9651)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("localhost:80", ("localhost", 80)),
        (":9700", ("", 9700)),
    ],
)
def test_parse_hostport(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize("text", ["::1:80", "[::1]80", "host", "host:x", "h:70000", "[::1"])
def test_parse_hostport_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hostport(text)


def test_format_hostport() -> None:
    assert format_hostport("::1", 5) == "[::1]:5"
    assert format_hostport("10.0.0.1", 5) == "10.0.0.1:5"


def test_rejects_negative_delay() -> None:
    with pytest.raises(ValueError):
        DelayLine(("127.0.0.1", 0), ("127.0.0.1", 1), up_delay=-1)


async def test_round_trip_at_least_twice_delay_and_bytes_identical() -> None:
    delay = 0.05
    async with proxied(echo_handler, up_delay=delay, down_delay=delay) as line:
        reader, writer = await asyncio.open_connection("127.0.0.1", line.port)
        for i in range(3):
            payload = f"ping {i} ".encode() * 100
            start = time.monotonic()
            writer.write(payload)
            await writer.drain()
            got = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
            rtt = time.monotonic() - start
            assert got == payload
            assert rtt >= 2 * delay, rtt
        writer.close()


async def test_asymmetric_delays_add_up() -> None:
    async with proxied(echo_handler, up_delay=0.08, down_delay=0.02) as line:
        reader, writer = await asyncio.open_connection("127.0.0.1", line.port)
        start = time.monotonic()
        writer.write(b"x")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(1), 10) == b"x"
        assert time.monotonic() - start >= 0.1
        writer.close()


async def test_large_transfer_intact_both_directions_with_backpressure() -> None:
    size = 16 * 1024 * 1024
    max_buffer = 256 * 1024
    payload = os.urandom(size)
    async with proxied(
        echo_handler, up_delay=0.01, down_delay=0.01, max_buffer=max_buffer, chunk_size=64 * 1024
    ) as line:
        reader, writer = await asyncio.open_connection("127.0.0.1", line.port)

        async def send() -> None:
            for off in range(0, size, 1 << 20):
                writer.write(payload[off : off + (1 << 20)])
                await writer.drain()
            writer.write_eof()

        sender = asyncio.create_task(send())
        received = await asyncio.wait_for(reader.read(), 120)  # until EOF: half-close propagated
        await sender
        writer.close()
    assert len(received) == size
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    assert line.up.bytes == size and line.down.bytes == size
    # Bounded buffering: at most one chunk beyond max_buffer is ever held per direction.
    assert line.up.max_queued <= max_buffer + 64 * 1024
    assert line.down.max_queued <= max_buffer + 64 * 1024


async def test_backpressure_reaches_the_sender() -> None:
    """A target that never reads: the proxy holds a bounded amount, the client keeps the rest."""
    stalled = asyncio.Event()

    async def sink_that_never_reads(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await stalled.wait()
        w.close()

    max_buffer = 128 * 1024
    async with proxied(sink_that_never_reads, max_buffer=max_buffer, chunk_size=32 * 1024) as line:
        _, writer = await asyncio.open_connection("127.0.0.1", line.port)
        writer.write(b"\0" * (64 * 1024 * 1024))

        def settled() -> bool:
            return line.up.max_queued >= max_buffer

        for _ in range(200):
            if settled():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert line.up.max_queued <= max_buffer + 32 * 1024
        # Most of the 64 MiB is still in the client's own buffer: the window closed.
        assert writer.transport.get_write_buffer_size() > 16 * 1024 * 1024
        stalled.set()
        writer.transport.abort()


async def test_half_close_from_client_and_server_close() -> None:
    async def reply_after_eof(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        data = await r.read()  # needs the client's EOF to arrive through the proxy
        w.write(b"got:" + data)
        await w.drain()
        w.close()

    async with proxied(reply_after_eof, up_delay=0.02, down_delay=0.02) as line:
        reader, writer = await asyncio.open_connection("127.0.0.1", line.port)
        writer.write(b"hello")
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 10) == b"got:hello"
        writer.close()
        for _ in range(100):
            if line.connections_active == 0:
                break
            await asyncio.sleep(0.02)
        assert line.connections_active == 0


async def test_jitter_keeps_order() -> None:
    async with proxied(
        echo_handler, up_delay=0.005, down_delay=0.005, jitter=0.005, chunk_size=16, seed=1
    ) as line:
        reader, writer = await asyncio.open_connection("127.0.0.1", line.port)
        sent = b"".join(i.to_bytes(4, "big") for i in range(2000))
        for off in range(0, len(sent), 40):
            writer.write(sent[off : off + 40])
            await writer.drain()
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 30) == sent
        writer.close()


async def test_unreachable_target_closes_client() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    dead_port = int(probe.sockets[0].getsockname()[1])
    probe.close()
    await probe.wait_closed()
    async with DelayLine(("127.0.0.1", 0), ("127.0.0.1", dead_port)) as line:
        reader, writer = await asyncio.open_connection("127.0.0.1", line.port)
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()


def test_cli_usage_errors() -> None:
    with pytest.raises(SystemExit):
        main(["--listen", "nope", "--target", "127.0.0.1:1"])


async def test_cli_process_end_to_end() -> None:
    async with server(echo_handler) as port:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hyphal.tools.delayline",
            "--listen",
            "127.0.0.1:0",
            "--target",
            f"127.0.0.1:{port}",
            "--up-delay",
            "30",
            "--down-delay",
            "30",
            stdout=subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            assert match, line
            reader, writer = await asyncio.open_connection("127.0.0.1", int(match.group(1)))
            start = time.monotonic()
            writer.write(b"abc")
            assert await asyncio.wait_for(reader.readexactly(3), 10) == b"abc"
            assert time.monotonic() - start >= 0.06
            writer.close()
        finally:
            proc.terminate()
            assert await asyncio.wait_for(proc.wait(), 10) == 0
