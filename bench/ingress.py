"""Ingress benchmark: throughput and added latency of the ingress against a direct connection
to the same backend, measured in the same run, on loopback (no root needed).

* Throughput: ``iperf3 -c`` to an ``iperf3 -s`` on ::1, direct and through an ingress listener
  (``--proxy-protocol none``: iperf3 cannot read a PROXY header; the header is one write per
  connection and does not change the bulk rate). Single stream and ``-P 4``.
* Latency: ``--rounds`` sequential connections, each connect + 1 byte + its echo + close, to an
  echo server (a separate process) that reads the PROXY v2 header when it comes through the
  ingress. Median and p99 per connection, direct vs ingress.

The ingress runs in this process on uvloop, as in the daemon. Failover time (a backend's death
until new connections land elsewhere) needs the services part and real nodes:
``bench/ingress.py --failover`` runs that in network namespaces (root).

    flock /tmp/hyphal-heavy.lock env PYTHONPATH=src:. .venv/bin/python bench/ingress.py
        [--time 5] [--rounds 300] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from ipaddress import IPv6Address
from typing import Any

from hyphal.ingress.limits import Limits
from hyphal.ingress.listener import IngressListener
from hyphal.ingress.spec import IngressSpec, ProxyMode
from hyphal.services.directory import Instance, Proto

ECHO = r"""
import asyncio, sys
from hyphal.ingress.proxy import ProxyDecoder
async def serve(reader, writer):
    data = await reader.read(65536)
    if sys.argv[2] == "proxy":
        decoder = ProxyDecoder()
        while decoder.feed(data) is None:
            data = await reader.read(65536)
        data = decoder.rest
        while not data:
            data = await reader.read(65536)
    writer.write(data)
    await writer.drain()
    await reader.read()
    writer.close()
async def main():
    server = await asyncio.start_server(serve, "::1", int(sys.argv[1]), backlog=1024)
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


class OneInstance:
    """A directory with one instance (the seam's Protocol) for the bench's loopback backend."""

    def __init__(self, port: int) -> None:
        self.instance = Instance("bench", b"\x01" * 32, IPv6Address("::1"), port, "tcp", 1, 0)

    def instances(self, service: str, proto: Proto = "tcp") -> list[Instance]:
        return [self.instance]

    def choose(self, service: str, proto: Proto = "tcp") -> Instance | None:
        return self.instance

    def address_of(self, service: str) -> IPv6Address:
        return IPv6Address("::1")

    def service_at(self, address: IPv6Address) -> str | None:
        return None

    def is_instance(self, service: str, public_key: bytes) -> bool:
        return True

    def local_services(self) -> list[str]:
        return ["bench"]


def free_port() -> int:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


async def ingress(port: int, mode: ProxyMode) -> tuple[IngressListener, int]:
    limits = replace(Limits(), max_per_client=4096)
    listener = IngressListener(IngressSpec(("::1", 0), "bench", mode, limits), OneInstance(port))
    await listener.start()
    assert listener.bound is not None
    return listener, listener.bound[1]


async def iperf(port: int, seconds: float, streams: int) -> float:
    proc = await asyncio.create_subprocess_exec(
        "iperf3", "-c", "::1", "-p", str(port), "-t", str(seconds), "-P", str(streams), "-J",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"iperf3 failed: {out[-300:]!r} {err[-300:]!r}")
    data = json.loads(out)
    return float(data["end"]["sum_received"]["bits_per_second"]) / 1e9


async def one_round(port: int) -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("::1", port)
    writer.write(b"x")
    got = await reader.readexactly(1)
    elapsed = time.perf_counter() - start
    assert got == b"x"
    writer.close()
    await writer.wait_closed()
    return elapsed


async def latency(port: int, rounds: int) -> dict[str, float]:
    samples = [await one_round(port) for _ in range(rounds)]
    samples.sort()
    return {
        "medianMs": statistics.median(samples) * 1e3,
        "p99Ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1e3,
    }


def spawn_echo(port: int, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO, str(port), mode], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("echo server did not start")
    return proc


async def run(seconds: float, rounds: int, iperf_port: int, plain_port: int,
              proxy_port: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    await asyncio.sleep(0.5)  # iperf3 -s binding
    listener, via = await ingress(iperf_port, "none")
    for streams in (1, 4):
        direct = await iperf(iperf_port, seconds, streams)
        through = await iperf(via, seconds, streams)
        result[f"throughputP{streams}"] = {
            "directGbps": direct, "ingressGbps": through, "ratio": through / direct
        }
    await listener.stop()
    listener, via = await ingress(proxy_port, "v2")
    await latency(plain_port, 20)  # warm-up
    await latency(via, 20)
    direct_l = await latency(plain_port, rounds)
    through_l = await latency(via, rounds)
    result["latency"] = {
        "direct": direct_l,
        "ingress": through_l,
        "addedMedianMs": through_l["medianMs"] - direct_l["medianMs"],
    }
    await listener.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", type=float, default=5.0, help="seconds per iperf3 run")
    parser.add_argument("--rounds", type=int, default=300, help="latency connections per side")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop",
        help="event loop for the ingress (the daemon runs uvloop)",
    )
    args = parser.parse_args()
    iperf_port, plain_port, proxy_port = free_port(), free_port(), free_port()
    procs: list[subprocess.Popen[Any]] = [
        subprocess.Popen(
            ["iperf3", "-s", "-B", "::1", "-p", str(iperf_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        spawn_echo(plain_port, "plain"),
        spawn_echo(proxy_port, "proxy"),
    ]
    try:
        work = run(args.time, args.rounds, iperf_port, plain_port, proxy_port)
        if args.loop == "uvloop":
            import uvloop

            result = uvloop.run(work)
        else:
            result = asyncio.run(work)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
    result["loop"] = args.loop
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"ingress ({args.loop}) on loopback vs a direct connection (same run, same backend)")
    for streams in (1, 4):
        row = result[f"throughputP{streams}"]
        print(
            f"  iperf3 -P {streams}: direct {row['directGbps']:.2f} Gbit/s, ingress "
            f"{row['ingressGbps']:.2f} Gbit/s ({row['ratio']:.0%})"
        )
    lat = result["latency"]
    print(
        f"  connect + 1-byte echo: direct median {lat['direct']['medianMs']:.3f} ms "
        f"(p99 {lat['direct']['p99Ms']:.3f}), ingress median {lat['ingress']['medianMs']:.3f} ms "
        f"(p99 {lat['ingress']['p99Ms']:.3f}); added {lat['addedMedianMs']:.3f} ms"
    )


if __name__ == "__main__":
    main()
