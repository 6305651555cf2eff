"""Issue 10 "names in DNS" with real daemons in namespaces and the real `dig` and `ping -6`.

Three nodes in a line A - B - C, each named by its own config (``member_name``); every node
learns the others' names from their signed member records (gossip), and serves DNS on its TUN
address and on 127.0.0.1, port 53.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hyphal.testing.netlab import Node, Topology, has_route

pytestmark = pytest.mark.netns

DOMAIN = "hyphal.internal"


def named_topology(topology: Callable[..., Topology], desc: str = "A-B B-C") -> Topology:
    topo = topology(desc, tun=True)
    for node in topo.nodes.values():
        config = node.dir / "names.toml"
        config.write_text(f'member_name = "{node.name.lower()}"\n')
        node.extra_args = [*node.extra_args, "-c", str(config)]
    topo.start()
    nodes = list(topo.nodes.values())
    topo.wait_until(
        lambda: all(has_route(x, y) for x in nodes for y in nodes if x is not y), timeout=30
    )
    every = {n.name.lower() for n in nodes}
    topo.wait_until(
        lambda: all({m["name"] for m in n.get("/api/v1/members")} == every for n in nodes),
        timeout=30,
        message="every member record everywhere",
    )
    return topo


@pytest.fixture
def line(topology: Callable[..., Topology]) -> Topology:
    return named_topology(topology)


def dig(node: Node, *args: str) -> str:
    result = node.exec(["dig", "+time=2", "+tries=2", *args], timeout=20)
    return result.stdout + result.stderr


def status_of(output: str) -> str:
    match = re.search(r"status: (\w+)", output)
    assert match, output
    return match.group(1)


def answers(output: str, rdtype: str) -> list[str]:
    return re.findall(rf"^\S+\s+\d+\s+IN\s+{rdtype}\s+(\S+)$", output, re.MULTILINE)


def test_dig_aaaa_ptr_nxdomain_refused_tcp_edns(line: Topology) -> None:
    a, b, c = line.node("A"), line.node("B"), line.node("C")
    # A's own server, on its TUN address, for a node two hops away
    out = dig(a, f"@{a.address}", f"c.{DOMAIN}", "AAAA")
    assert status_of(out) == "NOERROR" and answers(out, "AAAA") == [str(c.address)], out
    assert re.search(rf"c\.{DOMAIN}\.\s+10\s+IN\s+AAAA", out), out  # short TTL
    # C asks A's server across the mesh (the query itself travels the overlay)
    out = dig(c, f"@{a.address}", f"b.{DOMAIN}", "AAAA")
    assert answers(out, "AAAA") == [str(b.address)], out
    # on loopback, over TCP
    out = dig(b, "@127.0.0.1", "+tcp", f"a.{DOMAIN}", "AAAA")
    assert answers(out, "AAAA") == [str(a.address)] and "(TCP)" in out, out
    # reverse
    out = dig(a, "@127.0.0.1", "-x", str(c.address))
    assert answers(out, "PTR") == [f"c.{DOMAIN}."], out
    # missing name: NXDOMAIN with the SOA for negative caching
    out = dig(a, "@127.0.0.1", f"nope.{DOMAIN}", "AAAA")
    assert status_of(out) == "NXDOMAIN" and re.search(r"IN\s+SOA\s+ns\.hyphal\.internal\.", out)
    # an existing name asked for A: NODATA
    out = dig(a, "@127.0.0.1", f"b.{DOMAIN}", "A")
    assert status_of(out) == "NOERROR" and not answers(out, "A") and "SOA" in out, out
    # not an open resolver
    out = dig(a, "@127.0.0.1", "example.com", "A")
    assert status_of(out) == "REFUSED", out
    out = dig(a, "@127.0.0.1", f"b.{DOMAIN}", "ANY")
    assert status_of(out) == "REFUSED" and "EDE: 21" in out, out
    # EDNS: the client's 4096 is answered with our cap, 1232
    out = dig(a, "@127.0.0.1", "+bufsize=4096", f"b.{DOMAIN}", "AAAA")
    assert "udp: 1232" in out, out
    out = dig(a, "@127.0.0.1", "+noedns", f"b.{DOMAIN}", "AAAA")
    assert "OPT PSEUDOSECTION" not in out and answers(out, "AAAA"), out

    status = json.loads(a.cli("dns", "status", "--json").stdout)
    listeners = {row["listener"]: row["state"] for row in status["listeners"]}
    assert listeners == {
        f"udp [{a.address}]:53": "listening",
        f"tcp [{a.address}]:53": "listening",
        "udp 127.0.0.1:53": "listening",
        "tcp 127.0.0.1:53": "listening",
    }
    assert status["domain"] == DOMAIN and status["names"] == 3
    assert status["resolved"]["state"] in ("not-running", "registered")
    assert status["counters"]["rcode-nxdomain"] >= 1 and status["counters"]["rcode-refused"] >= 2
    human = a.cli("dns", "status").stdout
    assert "hyphal.internal" in human and "listening" in human


@pytest.fixture
def resolv_conf(line: Topology) -> Iterator[Path]:
    """/etc/netns/<A's namespace>/resolv.conf pointing at A's server (bind-mounted over
    /etc/resolv.conf by `ip netns exec`); removed afterwards."""
    a = line.node("A")
    folder = Path("/etc/netns") / a.ns
    folder.mkdir(parents=True, exist_ok=False)
    try:
        (folder / "resolv.conf").write_text(f"nameserver {a.address}\noptions timeout:2\n")
        yield folder / "resolv.conf"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_system_resolver_ping_by_name(line: Topology, resolv_conf: Path) -> None:
    a, c = line.node("A"), line.node("C")
    ping = a.exec(["ping", "-6", "-n", "-c", "1", "-W", "5", f"c.{DOMAIN}"])
    assert ping.returncode == 0 and "1 received" in ping.stdout, ping.stdout + ping.stderr
    assert str(c.address) in ping.stdout
    getent = a.exec(["getent", "ahostsv6", f"b.{DOMAIN}"])
    assert str(line.node("B").address) in getent.stdout, getent.stdout + getent.stderr
    missing = a.exec(["getent", "hosts", f"nope.{DOMAIN}"])
    assert missing.returncode == 2  # "not found": NXDOMAIN reached the application


def test_stopped_node_is_marked_offline(line: Topology) -> None:
    a, c = line.node("A"), line.node("C")
    c.kill()
    line.wait_until(lambda: not has_route(a, c), timeout=30)
    out = dig(a, "@127.0.0.1", f"c.{DOMAIN}", "AAAA")
    assert status_of(out) == "NOERROR" and not answers(out, "AAAA"), out
    assert "EDE: 0 (Other): (c (" in out and "is offline" in out, out
    assert re.search(r"hyphal\.internal\.\s+1\s+IN\s+SOA", out), out  # retried after 1 s
    # the name is back as soon as the route is
    c.start()
    line.wait_ready(["C"])
    line.wait_until(lambda: has_route(a, c), timeout=30)
    out = dig(a, "@127.0.0.1", f"c.{DOMAIN}", "AAAA")
    assert answers(out, "AAAA") == [str(c.address)], out
