"""Delay-line TCP proxy: adds a one-way delay (and optional jitter) to every byte in each direction.

Used by the netns tests and the benchmarks to give a link latency where ``tc netem`` is not
available. Each accepted client is connected to the target; every chunk read from one side is
held until ``arrival + delay (+ jitter)`` and then written to the other side, so a round trip
through the proxy takes at least ``up_delay + down_delay``.

* Order is preserved: with jitter, a chunk is never released before the chunk read ahead of it.
* Back-pressure is preserved: at most ``max_buffer`` bytes wait in each direction; beyond that the
  proxy stops reading, the socket's receive buffer fills and the sender's TCP window closes.
* Half-close is propagated (an EOF is delayed like data and forwarded with ``shutdown(SHUT_WR)``);
  a reset or error on either side aborts both sides.

"Up" is client -> target, "down" is target -> client.

Command line::

    python -m hyphal.tools.delayline --listen [::]:9700 --target [fd00::2]:9651 --delay-ms 50

Programmatic::

    line = DelayLine(("127.0.0.1", 0), ("127.0.0.1", 9651), up_delay=0.05, down_delay=0.05)
    await line.start()          # line.port is the bound port
    ...
    await line.aclose()

or ``await serve(...)`` to run until cancelled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("hyphal.tools.delayline")

DEFAULT_CHUNK = 64 * 1024
DEFAULT_MAX_BUFFER = 1024 * 1024


def parse_hostport(text: str) -> tuple[str, int]:
    """Parse ``[v6]:port``, ``host:port`` or ``:port`` (all interfaces) into (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"expected [address]:port, got {text!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError(f"expected host:port, got {text!r}")
        if ":" in host:
            raise ValueError(f"put an IPv6 address in brackets: [{host}]:{port_text}")
    try:
        port = int(port_text)
    except ValueError as exc:
        raise ValueError(f"bad port in {text!r}") from exc
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return host, port


def format_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class DirectionStats:
    """Counters of one direction of one connection (or totals of the proxy)."""

    bytes: int = 0
    chunks: int = 0
    max_queued: int = 0


@dataclass
class _Pipe:
    """One direction: reader side fills the queue, writer side drains it after the delay."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    delay: float
    jitter: float
    max_buffer: int
    chunk_size: int
    rng: random.Random
    stats: DirectionStats
    queue: deque[tuple[float, bytes | None]] = field(default_factory=deque)
    queued_bytes: int = 0
    last_release: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _release_time(self, now: float) -> float:
        extra = self.rng.uniform(-self.jitter, self.jitter) if self.jitter > 0 else 0.0
        release = max(now + max(0.0, self.delay + extra), self.last_release)
        self.last_release = release
        return release

    async def read_side(self) -> None:
        while True:
            while self.queued_bytes >= self.max_buffer:
                # Stop reading: the kernel buffer fills and the sender's window closes.
                self.changed.clear()
                await self.changed.wait()
            data = await self.reader.read(self.chunk_size)
            now = time.monotonic()
            if not data:
                self.queue.append((self._release_time(now), None))
                self.changed.set()
                return
            self.queue.append((self._release_time(now), data))
            self.queued_bytes += len(data)
            self.stats.max_queued = max(self.stats.max_queued, self.queued_bytes)
            self.changed.set()

    async def write_side(self) -> None:
        while True:
            while not self.queue:
                self.changed.clear()
                await self.changed.wait()
            release, data = self.queue[0]
            wait = release - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.queue.popleft()
            if data is None:
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                await self.writer.drain()
                return
            self.writer.write(data)
            await self.writer.drain()
            self.queued_bytes -= len(data)
            self.stats.bytes += len(data)
            self.stats.chunks += 1
            self.changed.set()


class DelayLine:
    """An asyncio TCP proxy adding a one-way delay in each direction (see module docstring).

    Delays and jitter are in seconds. ``listen``/``target`` are (host, port); port 0 binds any
    free port (read it back from :attr:`port`).
    """

    def __init__(
        self,
        listen: tuple[str, int],
        target: tuple[str, int],
        *,
        up_delay: float = 0.0,
        down_delay: float = 0.0,
        jitter: float = 0.0,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        chunk_size: int = DEFAULT_CHUNK,
        connect_timeout: float = 10.0,
        seed: int | None = None,
    ) -> None:
        if up_delay < 0 or down_delay < 0 or jitter < 0:
            raise ValueError("delays and jitter must be >= 0")
        if max_buffer < 1 or chunk_size < 1:
            raise ValueError("max_buffer and chunk_size must be >= 1")
        self.listen = listen
        self.target = target
        self.up_delay = up_delay
        self.down_delay = down_delay
        self.jitter = jitter
        self.max_buffer = max_buffer
        self.chunk_size = min(chunk_size, max_buffer)
        self.connect_timeout = connect_timeout
        self.rng = random.Random(seed)
        self.up = DirectionStats()
        self.down = DirectionStats()
        self.connections_total = 0
        self.connections_active = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound listening port (after :meth:`start`)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("delay line not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def sockname(self) -> tuple[str, int]:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("delay line not started")
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    async def start(self) -> DelayLine:
        host, port = self.listen
        self._server = await asyncio.start_server(
            self._on_client, host or None, port, reuse_address=True
        )
        return self

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop listening and abort every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def __aenter__(self) -> DelayLine:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        peer = client_writer.get_extra_info("peername")
        self.connections_total += 1
        self.connections_active += 1
        target_writer: asyncio.StreamWriter | None = None
        try:
            try:
                target_reader, tw = await asyncio.wait_for(
                    asyncio.open_connection(*self.target, limit=self.chunk_size * 2),
                    self.connect_timeout,
                )
            except (OSError, TimeoutError) as exc:
                log.warning("client %s: cannot reach target %s: %s", peer, self.target, exc)
                _abort(client_writer)
                return
            target_writer = tw
            log.info("client %s connected to %s", peer, format_hostport(*self.target))
            up = _Pipe(
                client_reader,
                tw,
                self.up_delay,
                self.jitter,
                self.max_buffer,
                self.chunk_size,
                self.rng,
                self.up,
            )
            down = _Pipe(
                target_reader,
                client_writer,
                self.down_delay,
                self.jitter,
                self.max_buffer,
                self.chunk_size,
                self.rng,
                self.down,
            )
            tasks = [
                asyncio.create_task(coro)
                for coro in (up.read_side(), up.write_side(), down.read_side(), down.write_side())
            ]
            try:
                # Finish when both writers delivered their EOF, or abort on the first error.
                pending: set[asyncio.Task[None]] = set(tasks)
                while pending:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        err = task.exception()
                        if err is not None:
                            raise err
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            log.info(
                "client %s closed (up %d B, down %d B)", peer, up.stats.bytes, down.stats.bytes
            )
            for w in (client_writer, tw):
                w.close()
        except (OSError, asyncio.IncompleteReadError) as exc:
            log.info("client %s aborted: %s", peer, exc)
            _abort(client_writer)
            if target_writer is not None:
                _abort(target_writer)
        except asyncio.CancelledError:
            _abort(client_writer)
            if target_writer is not None:
                _abort(target_writer)
            raise
        finally:
            self.connections_active -= 1


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a reset (like a dying process), so the other side sees the failure."""
    transport = writer.transport
    with contextlib.suppress(Exception):
        transport.abort()


async def serve(
    listen: tuple[str, int],
    target: tuple[str, int],
    *,
    up_delay: float = 0.0,
    down_delay: float = 0.0,
    jitter: float = 0.0,
    max_buffer: int = DEFAULT_MAX_BUFFER,
    seed: int | None = None,
    on_ready: Callable[[DelayLine], None] | None = None,
) -> None:
    """Run a delay line until cancelled. Delays in seconds; ``on_ready`` is called once bound."""
    line = DelayLine(
        listen,
        target,
        up_delay=up_delay,
        down_delay=down_delay,
        jitter=jitter,
        max_buffer=max_buffer,
        seed=seed,
    )
    await line.start()
    if on_ready is not None:
        on_ready(line)
    await line.serve_forever()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hyphal.tools.delayline",
        description=(
            "TCP proxy that delays every byte by a one-way delay in each direction "
            "(up = client -> target, down = target -> client), keeping order and TCP "
            "back-pressure. A round trip through it takes at least up + down delay."
        ),
    )
    parser.add_argument(
        "--listen",
        required=True,
        metavar="HOST:PORT",
        help="address to listen on, e.g. [::]:9700 or 127.0.0.1:0 (0 = any port)",
    )
    parser.add_argument(
        "--target",
        required=True,
        metavar="HOST:PORT",
        help="address to connect each client to, e.g. [fd00::2]:9651",
    )
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        help="one-way delay in both directions, ms (default 0)",
    )
    parser.add_argument(
        "--up-delay",
        type=float,
        default=None,
        metavar="MS",
        help="client -> target delay, ms (overrides --delay-ms)",
    )
    parser.add_argument(
        "--down-delay",
        type=float,
        default=None,
        metavar="MS",
        help="target -> client delay, ms (overrides --delay-ms)",
    )
    parser.add_argument(
        "--jitter-ms",
        type=float,
        default=0.0,
        help="uniform jitter +/- this many ms per chunk; order is kept (default 0)",
    )
    parser.add_argument(
        "--max-buffer",
        type=int,
        default=DEFAULT_MAX_BUFFER,
        metavar="BYTES",
        help=f"bytes held per direction before reading pauses (default {DEFAULT_MAX_BUFFER})",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the jitter generator")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        listen = parse_hostport(args.listen)
        target = parse_hostport(args.target)
    except ValueError as exc:
        parser.error(str(exc))
    up = args.delay_ms if args.up_delay is None else args.up_delay
    down = args.delay_ms if args.down_delay is None else args.down_delay
    if min(up, down, args.jitter_ms) < 0:
        parser.error("delays and jitter must be >= 0")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s delayline %(levelname)s %(message)s",
        stream=sys.stderr,
    )

    def ready(line: DelayLine) -> None:
        host, port = line.sockname
        # Parsed by tests/netns/topology.py: keep the "listening on" wording.
        print(
            f"delayline: listening on {format_hostport(host, port)} -> "
            f"{format_hostport(*target)} up={up}ms down={down}ms jitter={args.jitter_ms}ms",
            flush=True,
        )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await serve(
                listen,
                target,
                up_delay=up / 1000,
                down_delay=down / 1000,
                jitter=args.jitter_ms / 1000,
                max_buffer=args.max_buffer,
                seed=args.seed,
                on_ready=ready,
            )

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"delayline: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
