"""A stand-in for ``hyphal run`` used to test the topology builder before the daemon exists.

It takes the same flags the builder passes (``run -k KEY --peers URI... -t PORT --api-addr A
[--no-tun] [--tun-name N] [--network-name N --network-key-file F]``), really listens on TCP,
really dials its peers (through the delay lines), exchanges public keys and measures the round
trip over each link with ping/pong lines, and serves a tiny HTTP API:

* ``GET /api/v1/admin`` -> ``{"nodeSubnet", "nodePubkey"}``
* ``GET /api/v1/admin/peers`` -> ``[{"pubkey", "endpoint", "type", "connectionState", "rttMs"}]``
* ``GET /api/v1/admin/routes/selected`` -> one route per live direct peer (metric 1)

Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from hyphal.identity import NodeIdentity, subnet_for_public_key
from hyphal.tools.delayline import parse_hostport


class FakeDaemon:
    def __init__(self, identity: NodeIdentity) -> None:
        self.identity = identity
        self.pubkey = identity.public_key.hex()
        self.peers: dict[str, dict[str, Any]] = {}

    async def link(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, endpoint: str, kind: str
    ) -> None:
        writer.write(f"HELLO {self.pubkey}\n".encode())
        await writer.drain()
        line = (await asyncio.wait_for(reader.readline(), 10)).decode().split()
        if len(line) != 2 or line[0] != "HELLO":
            raise ConnectionError(f"bad hello {line!r}")
        peer = line[1]
        state: dict[str, Any] = {
            "pubkey": peer,
            "endpoint": endpoint,
            "type": kind,
            "connectionState": "alive",
            "rttMs": None,
        }
        self.peers[peer] = state
        print(f"peer {peer[:8]} up via {endpoint} ({kind})", flush=True)

        async def pinger() -> None:
            while True:
                writer.write(f"PING {time.monotonic()}\n".encode())
                await writer.drain()
                await asyncio.sleep(0.2)

        task = asyncio.create_task(pinger())
        try:
            while line_bytes := await reader.readline():
                word, _, arg = line_bytes.decode().strip().partition(" ")
                if word == "PING":
                    writer.write(f"PONG {arg}\n".encode())
                    await writer.drain()
                elif word == "PONG":
                    state["rttMs"] = (time.monotonic() - float(arg)) * 1000
        finally:
            task.cancel()
            if self.peers.get(peer) is state:
                del self.peers[peer]
            print(f"peer {peer[:8]} down", flush=True)
            writer.close()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        with contextlib.suppress(Exception):
            await self.link(reader, writer, f"tcp://[{host}]:{port}", "inbound")

    async def dial(self, uri: str) -> None:
        host, port = parse_hostport(uri.removeprefix("tcp://"))
        while True:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
                await self.link(reader, writer, uri, "static")
            except Exception as exc:
                print(f"dial {uri}: {exc!r}", flush=True)
            await asyncio.sleep(0.3)

    async def http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).decode().split()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            path = request[1] if len(request) > 1 else "/"
            status: int = 200
            body: Any = None
            if path == "/api/v1/admin":
                body = {
                    "nodeSubnet": str(subnet_for_public_key(self.identity.public_key)),
                    "nodePubkey": self.pubkey,
                }
            elif path == "/api/v1/admin/peers":
                body = list(self.peers.values())
            elif path == "/api/v1/admin/routes/selected":
                body = [
                    {
                        "subnet": str(subnet_for_public_key(bytes.fromhex(p))),
                        "nextHop": s["endpoint"],
                        "metric": 1,
                        "seqno": 0,
                    }
                    for p, s in self.peers.items()
                ]
            else:
                status, body = 404, {"error": "not found"}
            data = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                f"content-length: {len(data)}\r\nconnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        finally:
            writer.close()


async def amain(args: argparse.Namespace) -> None:
    daemon = FakeDaemon(NodeIdentity.load(Path(args.k)))
    print(f"fake daemon {daemon.pubkey[:8]} peers={args.peers} tun={not args.no_tun}", flush=True)
    await asyncio.start_server(daemon.accept, "::", args.t)
    api_host, api_port = parse_hostport(args.api_addr)
    await asyncio.sleep(0.3)  # like a real daemon, the API is not instantly ready
    await asyncio.start_server(daemon.http, api_host, api_port)
    print("api ready", flush=True)
    await asyncio.gather(*(daemon.dial(uri) for uri in args.peers), asyncio.Event().wait())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["run"])
    parser.add_argument("-k", required=True)
    parser.add_argument("--peers", action="append", default=[])
    parser.add_argument("-t", type=int, default=9651)
    parser.add_argument("--api-addr", default="127.0.0.1:8989")
    parser.add_argument("--no-tun", action="store_true")
    parser.add_argument("--tun-name")
    parser.add_argument("--network-name")
    parser.add_argument("--network-key-file")
    parser.add_argument("--fail", action="store_true", help="exit at once (tests error paths)")
    args = parser.parse_args()
    if args.fail:
        print("fake daemon: failing on purpose", flush=True)
        sys.exit(3)
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
