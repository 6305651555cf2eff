"""Service addresses with real daemons, real backends and real clients in namespaces.

C dials instances A and B; the link to B is slower, so A is the nearest instance from C. Both
serve "web" (Python's http.server, each with its own files), "perf" (iperf3) and "dns" (dnsmasq, each answering
its own TXT record) at the service's one address. From C:

* TCP: a paced iperf3 stream that started on B (A not yet healthy) stays on B to its end while
  A becomes healthy and new connections (curl) go to A; one that started on A finishes there
  while A is drained and new connections go to B.
* UDP: ``dig`` from one fixed source port stays on the instance its first query reached, while
  queries from other ports follow health (A drained: B answers them). A third node L, as near
  as A and healthy, claims "dns" without the owner's grant: no flow is ever pinned to it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from ipaddress import IPv6Address
from typing import Any

import pytest

from hyphal.crypto.signing import XEdDSASigner
from hyphal.node.members import PUBLIC_NETWORK
from hyphal.services.address import service_address
from hyphal.services.grant import make_grant
from hyphal.testing.netlab import Node, Topology, has_route

pytestmark = pytest.mark.netns

WEB = service_address(PUBLIC_NETWORK, "web")
DNS = service_address(PUBLIC_NETWORK, "dns")
PERF = service_address(PUBLIC_NETWORK, "perf")
SECONDS = 20  # the first long-lived connection: A's checks must pass while it runs


CHECKS: dict[str, Callable[[Node], str]] = {
    "web": lambda node: "tcp",
    # iperf3's server takes any connection as a test: a flag file says it is up instead
    "perf": lambda node: f"exec:test -f {node.dir / 'perf-up'}",
    "dns": lambda node: "exec:dig +time=1 +tries=1 @::1 who.vip.test TXT",
}


def grant(owner: Node, instance: Node, service: str) -> str:
    now = int(time.time())
    return make_grant(
        XEdDSASigner(owner.identity.private_bytes()),
        PUBLIC_NETWORK,
        service=service,
        instance=instance.public_key_bytes,
        owner=owner.public_key_bytes,
        since=now - 3600,
        expires=now + 3600,
    ).text()


def services_toml(
    node: Node, owner: Node | None, services: list[tuple[str, str, int]], pins: list[str]
) -> None:
    """``node`` serves ``services`` (name, proto, port), granted by ``owner`` (None: no grant,
    its own claim); ``pins`` are services whose owner is pinned to ``owner``'s key."""
    lines = [f'member_name = "{node.name.lower()}"']
    for name, proto, port in services:
        lines += [
            "[[service]]",
            f'name = "{name}"',
            f'proto = "{proto}"',
            f"port = {port}",
            f'check = "{CHECKS[name](node)}"',
            "interval = 0.3",
            "rise = 2",
            "fall = 2",
        ]
        if owner is not None and node is not owner:
            lines.append(f'grant = "{grant(owner, node, name)}"')
    if pins:
        assert owner is not None
        lines += ["[service_owners]", *(f'{name} = "{owner.public_key}"' for name in pins)]
    path = node.dir / "services.toml"
    path.write_text("\n".join(lines) + "\n")
    node.extra_args = [*node.extra_args, "-c", str(path)]


def start(
    topology: Callable[..., Topology], services: list[tuple[str, str, int]], *, liar: bool = False
) -> Topology:
    """C dials A and B (the link to B slower); with ``liar``, also L, as near as A, which
    claims the services without a grant while every node pins A as their owner."""
    topo = topology("C-A C-L C-B:delay=25" if liar else "C-A C-B:delay=25", tun=True)
    a, b, c = topo.node("A"), topo.node("B"), topo.node("C")
    pins = [name for name, _, _ in services] if liar else []
    services_toml(a, a, services, pins)
    services_toml(b, a, services, pins)
    if liar:
        services_toml(c, a, [], pins)
        services_toml(topo.node("L"), None, services, [])
    topo.start()
    topo.wait_until(
        lambda: all(has_route(c, n) for n in topo.nodes.values() if n is not c), timeout=30
    )
    return topo


def holds(node: Node, address: IPv6Address) -> bool:
    """Whether the node's kernel owns ``address`` (the part put it on the TUN, deprecated)."""
    out = node.exec(["ip", "-6", "-o", "addr", "show"]).stdout
    return any(f" {address}/128 " in line and "deprecated" in line for line in out.splitlines())


def serve(node: Node) -> None:
    """The backends: http.server with a file naming the node, and an iperf3 server."""
    www = node.dir / "www"
    www.mkdir(exist_ok=True)
    (www / "who").write_text(node.name + "\n")
    http = ["python3", "-m", "http.server", "8080", "--bind", "::", "--directory", str(www)]
    node.popen(http, "http.log")
    node.popen(["iperf3", "-s", "-p", "5201", "--forceflush"], "iperf3-server.log")
    (node.dir / "perf-up").touch()


def who(c: Node, address: IPv6Address) -> str:
    result = c.exec(["curl", "-g", "-sS", "-m", "3", f"http://[{address}]:8080/who"], timeout=10)
    return result.stdout.strip()


def stream(c: Node, seconds: int, out: str) -> subprocess.Popen[bytes]:
    """A long-lived, paced TCP stream from C to the perf service's address (2 Mbit/s)."""
    argv = ["iperf3", "-c", str(PERF), "-p", "5201", "-t", str(seconds), "-b", "2M", "-J"]
    return c.popen(argv, out)


def accepted(node: Node) -> int:
    """How many iperf3 tests the node's iperf3 server accepted."""
    log = node.dir / "iperf3-server.log"
    return log.read_text().count("Accepted connection") if log.exists() else 0


def streaming(node: Node) -> bool:
    """Whether the node's kernel holds an established connection on the iperf3 port."""
    out = node.exec(["ss", "-tnH", "state", "established", "( sport = :5201 )"]).stdout
    return bool(out.strip())


def finished(c: Node, proc: subprocess.Popen[bytes], out: str, seconds: int) -> None:
    assert proc.wait(timeout=seconds + 20) == 0, (c.dir / out).read_text()[-2000:]
    report = json.loads((c.dir / out).read_text())
    received = report["end"]["sum_received"]["bytes"]
    assert received > seconds * 2_000_000 / 8 * 0.7, report["end"]["sum_received"]


def test_tcp_connections_stay_pinned_while_new_ones_follow_health(
    topology: Callable[..., Topology],
) -> None:
    topo = start(topology, [("web", "tcp", 8080), ("perf", "tcp", 5201)])
    a, b, c = topo.node("A"), topo.node("B"), topo.node("C")
    topo.wait_until(lambda: holds(a, WEB) and holds(b, PERF), timeout=20, message="on the TUNs")
    serve(b)  # only B's backends run: A's checks fail, A is not healthy
    topo.wait_until(lambda: who(c, WEB) == "B", timeout=20, message="web reaches B")
    topo.wait_until(
        lambda: c.api("GET", "/api/v1/services/perf/choose").status == 200,
        timeout=10,
        message="perf healthy on B",
    )

    first = stream(c, SECONDS, "first.json")
    topo.wait_until(lambda: streaming(b), timeout=10, message="the stream runs on B")
    serve(a)  # A becomes healthy, and it is nearer
    topo.wait_until(lambda: who(c, WEB) == "A", timeout=SECONDS - 5, message="new flows reach A")
    assert first.poll() is None, "the stream should still be running"
    assert streaming(b) and not streaming(a)  # the running connection did not move
    finished(c, first, "first.json", SECONDS)
    assert accepted(b) == 1 and accepted(a) == 0

    second = stream(c, 6, "second.json")
    topo.wait_until(lambda: streaming(a), timeout=10, message="a new stream runs on A")
    for service in ("web", "perf"):
        drained = a.cli("service", "drain", service)
        assert drained.returncode == 0, drained.stderr
    topo.wait_until(lambda: who(c, WEB) == "B", timeout=10, message="drained: new flows to B")
    assert streaming(a) and second.poll() is None  # the pinned stream still runs on A
    finished(c, second, "second.json", 6)
    assert accepted(a) == 1 and accepted(b) == 1

    ping = c.ping(WEB, count=1, timeout=5)  # the service address answers echo (instance B)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    status = c.get("/api/v1/service-addresses")
    assert status["addresses"] == [] and status["flows"] >= 1
    assert {row["service"] for row in status["pinned"]} >= {"web", "perf"}


def dnsmasq(node: Node) -> subprocess.Popen[bytes]:
    argv = [
        shutil.which("dnsmasq") or "/usr/sbin/dnsmasq",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--user=root",
        f"--pid-file={node.dir / 'dnsmasq.pid'}",
        "--port=53",
        "--bind-dynamic",
        "--listen-address=::1",
        f"--listen-address={DNS}",
        f"--txt-record=who.vip.test,{node.name}",
        "--log-facility=-",
        "--log-queries",
    ]
    return node.popen(argv, "dnsmasq.log")


def dig_who(c: Node, port: int | None = None) -> str:
    argv = ["dig", "+short", "+time=1", "+tries=1", f"@{DNS}", "who.vip.test", "TXT"]
    if port is not None:
        argv[1:1] = ["-b", f"{c.address}#{port}"]
    return c.exec(argv, timeout=10).stdout.strip().strip('"')


@pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq (dnsmasq-base) not installed")
def test_udp_dns_through_the_service_address_is_pinned_per_flow(
    topology: Callable[..., Topology],
) -> None:
    topo = start(topology, [("dns", "udp", 53)], liar=True)
    a, b, c, liar = topo.node("A"), topo.node("B"), topo.node("C"), topo.node("L")
    topo.wait_until(lambda: holds(a, DNS) and holds(b, DNS), timeout=20, message="dns on TUNs")
    for node in (a, b, liar):
        dnsmasq(node)
    topo.wait_until(lambda: dig_who(c) == "A", timeout=20, message="the nearest answers")
    assert dig_who(c, 5353) == "A"  # this source port's flow is pinned to A
    drained = a.cli("service", "drain", "dns")
    assert drained.returncode == 0, drained.stderr
    topo.wait_until(lambda: dig_who(c) == "B", timeout=10, message="drained: new flows to B")
    for _ in range(3):
        assert dig_who(c, 5353) == "A"  # the same socket's queries stay on A
        assert dig_who(c) == "B"  # every other port is a new flow
    # L claimed "dns" without a grant and is as near as A. On its own machine it may hold the
    # address (it believes its claim), but no flow of C's was ever pinned to it.
    pinned = {row["instance"] for row in c.get("/api/v1/service-addresses")["pinned"]}
    assert pinned and pinned <= {a.public_key, b.public_key}

    def liar_healthy() -> dict[str, Any] | None:
        rows = c.get("/api/v1/services/dns")["instances"]
        found = [r for r in rows if r["publicKey"] == liar.public_key and r["healthy"]]
        return found[0] if found else None

    seen = topo.wait_until(liar_healthy, timeout=10, message="L's claim seen, healthy")
    assert seen is not None and seen["authorised"] is False  # healthy, near, not the owner's
