"""Issue 3 in real namespaces: real IPv6 traffic through TUN devices across the mesh."""

from __future__ import annotations

import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hyphal.testing.netlab import Topology, has_route, next_hop

pytestmark = pytest.mark.netns

HOSTILE = str(Path(__file__).parent / "tools" / "hostile_peer.py")


@pytest.fixture
def line(topology: Callable[..., Topology]) -> Topology:
    topo = topology("A-B B-C", start=True, tun=True)
    a, c = topo.node("A"), topo.node("C")
    topo.wait_until(lambda: has_route(a, c) and has_route(c, a), timeout=20)
    return topo


def test_ping_iperf_curl_across_two_hops(line: Topology, tmp_path: Path) -> None:
    a, c = line.node("A"), line.node("C")
    ping = a.exec(["ping", "-6", "-n", "-c", "3", "-i", "0.2", str(c.address)])
    assert ping.returncode == 0 and "3 received" in ping.stdout, ping.stdout + ping.stderr

    server = c.popen(["iperf3", "-s", "-1", "-B", str(c.address)], "iperf3-server")
    line.wait_until(lambda: c.listening(5201), timeout=10)
    client = a.exec(["iperf3", "-c", str(c.address), "-t", "2", "-f", "m"], timeout=30)
    assert client.returncode == 0, client.stdout + client.stderr
    assert re.search(r"[\d.]+ Mbits/sec\s+receiver", client.stdout), client.stdout
    server.wait(10)

    site = tmp_path / "site"
    site.mkdir()
    (site / "hello.txt").write_text("hello over the hyphal overlay\n")
    c.popen(
        [sys.executable, "-m", "http.server", "8080", "--bind", str(c.address), "-d", str(site)],
        "http",
    )
    line.wait_until(lambda: c.listening(8080), timeout=10)
    curl = a.exec(["curl", "-g", "-s", "--max-time", "10", f"http://[{c.address}]:8080/hello.txt"])
    assert curl.stdout == "hello over the hyphal overlay\n", curl.stderr


def test_traceroute_lists_the_relay_and_unreachable_is_prompt(line: Topology) -> None:
    a, b, c = line.node("A"), line.node("B"), line.node("C")
    trace = a.exec(["traceroute", "-6", "-n", "-q", "1", "-w", "2", str(c.address)], timeout=60)
    hops = re.findall(r"^\s*(\d+)\s+(\S+)", trace.stdout, re.MULTILINE)
    assert [h[1] for h in hops[:2]] == [str(b.address), str(c.address)], trace.stdout

    started = time.monotonic()
    nowhere = a.exec(["ping", "-6", "-n", "-c", "1", "-W", "5", "5ff:1234:5678:9abc::1"])
    took = time.monotonic() - started
    assert "Destination unreachable" in nowhere.stdout, nowhere.stdout
    assert took < 2.0  # an ICMPv6 error, not a 5 s timeout
    assert a.get("/api/v1/admin/stats/packets")["drops"].get("no-route", 0) >= 1


@pytest.mark.parametrize("how", ["sigkill", "sigstop"])
def test_running_ping_survives_losing_a_relay(
    topology: Callable[..., Topology], how: str, record_property: Callable[[str, object], None]
) -> None:
    topo = topology("A-B B-D A-D:delay=20", start=True, tun=True)
    a, b, d = topo.node("A"), topo.node("B"), topo.node("D")
    topo.wait_until(
        lambda: next_hop(a, d) == b.public_key and next_hop(d, a) == b.public_key, timeout=20
    )
    ping = a.popen(["ping", "-6", "-n", "-i", "0.1", "-c", "60", str(d.address)], "ping")
    time.sleep(2.0)
    if how == "sigkill":
        b.kill()
    else:
        b.kill(signal.SIGSTOP)
    try:
        ping.wait(30)
    finally:
        if how == "sigstop":
            b.kill(signal.SIGCONT)
    output = (a.dir / "ping").read_text()
    match = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    assert match, output
    lost = int(match.group(1)) - int(match.group(2))
    record_property(f"ping_lost_{how}", lost)
    print(f"ping -6 every 100 ms across a relay {how}: {lost} of {match.group(1)} lost")
    assert lost <= (3 if how == "sigkill" else 15)


def test_forged_inner_source_is_dropped_and_counted(line: Topology) -> None:
    a, b = line.node("A"), line.node("B")
    before = b.get("/api/v1/admin/stats/packets")["drops"].get("spoofed-source", 0)
    link = line.link("A", "B")
    result = a.exec(
        [sys.executable, HOSTILE, str(link.addr6_b), "9651", "forged-source", b.public_key]
    )
    assert result.stdout.strip() == "sent", result.stdout + result.stderr
    line.wait_until(
        lambda: (
            b.get("/api/v1/admin/stats/packets")["drops"].get("spoofed-source", 0) == before + 1
        ),
        timeout=10,
    )
    assert b.running
