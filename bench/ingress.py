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
``--failover N`` runs N backend deaths in network namespaces (root; see :func:`failover`), and
first iperf3 over the real overlay: through an ingress vs straight to the instance's overlay
address (:func:`overlay_throughput`).

    flock /tmp/hyphal-heavy.lock env PYTHONPATH=src:. .venv/bin/python bench/ingress.py
        [--time 5] [--rounds 300] [--loop uvloop|asyncio] [--failover 3] [--json]
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
        "iperf3",
        "-c",
        "::1",
        "-p",
        str(port),
        "-t",
        str(seconds),
        "-P",
        str(streams),
        "-J",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
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


async def run(
    seconds: float, rounds: int, iperf_port: int, plain_port: int, proxy_port: int
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    await asyncio.sleep(0.5)  # iperf3 -s binding
    listener, via = await ingress(iperf_port, "none")
    for streams in (1, 4):
        direct = await iperf(iperf_port, seconds, streams)
        through = await iperf(via, seconds, streams)
        result[f"throughputP{streams}"] = {
            "directGbps": direct,
            "ingressGbps": through,
            "ratio": through / direct,
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


def failover(rounds: int, seconds: float) -> dict[str, Any]:
    """In namespaces ``C - I``, ``I - S1``, ``I - S2``: ``web`` (python http.server) on S1 and S2,
    an ingress on I. Kill the backend of the instance I's last connection went to, then connect
    through the ingress every 50 ms: how long until the client's connections are answered by
    the other instance (the ingress tries the next instance when one refuses), and until I's
    directory stops listing the dead one (health check fall + record propagation)."""
    import os
    import tempfile

    from hyphal.testing.netlab import Topology, has_route, kill_tree

    # the daemons run in their own directories: a relative PYTHONPATH would miss this tree
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    os.environ["PYTHONPATH"] = os.pathsep.join(os.path.abspath(x) for x in paths if x)

    results: list[dict[str, float]] = []
    with Topology.build("C-I I-S1 I-S2", tun=True, workdir=tempfile.mkdtemp()) as topo:
        for name in ("I", "S1", "S2"):
            node = topo.node(name)
            (node.dir / "name.toml").write_text(f'member_name = "{name.lower()}"\n')
            node.extra_args = [*node.extra_args, "-c", str(node.dir / "name.toml")]
        topo.start(["I", "S1", "S2"])
        i, c = topo.node("I"), topo.node("C")
        servers = [topo.node("S1"), topo.node("S2")]
        topo.wait_until(lambda: all(has_route(i, x) and has_route(x, i) for x in servers), 30)
        url = f"http://{topo.link('C', 'I').addr4_b}:8080/who"

        def start_backend(node: Any) -> Any:
            web = node.dir / "web"
            web.mkdir(exist_ok=True)
            (web / "who").write_text(node.name.lower())
            proc = node.popen(
                [sys.executable, "-m", "http.server", "8080", "--bind", "::", "-d", str(web)],
                "web.log",
            )
            topo.wait_until(lambda: node.listening(8080), 15)
            return proc

        def usable() -> set[str]:
            r = i.api("GET", "/api/v1/services/web")
            if r.status != 200:
                return set()
            return {x["node"] for x in r.data["instances"] if x["usable"]}

        procs = {node.name: start_backend(node) for node in servers}
        common = ["--port", "8080", "--interval", "0.5", "--rise", "2", "--fall", "2"]
        s1, s2 = servers
        out = s1.cli("service", "add", "web", *common)
        assert out.returncode == 0, out.stderr
        granted = s1.cli(
            "service", "grant", "web", "--to", s2.public_key, "-k", str(s1.key_file), "--json"
        )  # S1 owns the name; S2 serves by grant
        assert granted.returncode == 0, granted.stderr
        grant = json.loads(granted.stdout)["grant"]
        out = s2.cli("service", "add", "web", *common, "--grant", grant)
        assert out.returncode == 0, out.stderr
        topo.wait_until(lambda: usable() == {"s1", "s2"}, 30)
        out = i.cli(
            "ingress",
            "add",
            "--listen",
            "0.0.0.0:8080",
            "--service",
            "web",
            "--proxy-protocol",
            "none",
        )
        assert out.returncode == 0, out.stderr
        overlay = overlay_throughput(topo, seconds)
        for _ in range(rounds):
            topo.wait_until(lambda: usable() == {"s1", "s2"}, 30)
            first = c.exec(["curl", "-s", "-m", "2", url]).stdout.strip()
            victim = topo.node(first.upper())
            other = ({"s1", "s2"} - {first}).pop()
            kill_tree(procs[victim.name])
            died = time.monotonic()
            landed = gone = None
            failures = 0
            while landed is None or gone is None:
                now = time.monotonic() - died
                if now > 20:
                    break
                if landed is None:
                    got = c.exec(["curl", "-s", "-m", "2", url]).stdout.strip()
                    if got == other:
                        landed = now
                    else:
                        failures += 1
                if gone is None and victim.name.lower() not in usable():
                    gone = time.monotonic() - died
                time.sleep(0.05)
            results.append(
                {
                    "landedElsewhereS": -1.0 if landed is None else landed,
                    "directoryDropS": -1.0 if gone is None else gone,
                    "clientFailures": failures,
                }
            )
            procs[victim.name] = start_backend(victim)
    return {"failover": results, "overlay": overlay}


def overlay_throughput(topo: Any, seconds: float) -> dict[str, float]:
    """iperf3 to an iperf3 -s on S1: from C through I's ingress (veth, then the overlay), vs
    from I straight to S1's overlay address (the same backend, the same overlay path)."""
    i, c, s1 = topo.node("I"), topo.node("C"), topo.node("S1")
    s1.popen(["iperf3", "-s", "-p", "5201"], "iperf3.log")
    topo.wait_until(lambda: s1.listening(5201), 15)
    out = s1.cli("service", "add", "perf", "--port", "5201", "--check", "none")
    assert out.returncode == 0, out.stderr
    out = i.cli(
        "ingress",
        "add",
        "--listen",
        "0.0.0.0:5201",
        "--service",
        "perf",
        "--proxy-protocol",
        "none",
    )
    assert out.returncode == 0, out.stderr
    topo.wait_until(lambda: i.get("/api/v1/ingress")["listeners"][-1]["instances"] == 1, 30)

    def gbps(node: Any, host: str) -> float:
        run = node.exec(
            ["iperf3", "-c", host, "-p", "5201", "-t", str(seconds), "-J"], timeout=seconds + 30
        )
        data = json.loads(run.stdout)
        return float(data["end"]["sum_received"]["bits_per_second"]) / 1e9

    direct = gbps(i, str(s1.address))
    through = gbps(c, topo.link("C", "I").addr4_b)
    return {"directOverlayGbps": direct, "ingressGbps": through, "ratio": through / direct}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", type=float, default=5.0, help="seconds per iperf3 run")
    parser.add_argument("--rounds", type=int, default=300, help="latency connections per side")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--failover",
        type=int,
        default=0,
        metavar="N",
        help="also measure N backend deaths in network namespaces (root)",
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
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
    if args.failover:
        result.update(failover(args.failover, args.time))
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
    if "overlay" in result:
        row = result["overlay"]
        print(
            f"  over the overlay (namespaces, TUN): iperf3 I -> S1 direct "
            f"{row['directOverlayGbps']:.2f} Gbit/s, C -> I's ingress -> S1 "
            f"{row['ingressGbps']:.2f} Gbit/s ({row['ratio']:.0%})"
        )
    for n, row in enumerate(result.get("failover", []), 1):
        print(
            f"  failover #{n}: backend killed -> new connections on the other instance after "
            f"{row['landedElsewhereS']:.2f} s ({row['clientFailures']} failed first); "
            f"I's directory dropped it after {row['directoryDropS']:.2f} s"
        )


if __name__ == "__main__":
    main()
