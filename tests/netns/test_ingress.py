"""The public ingress and the transparent unwrap with real daemons and real receivers.

The chain is ``C - I - S``: C is a client namespace with no daemon (it reaches only I's veth
addresses), I runs hyphal with an ingress, S runs hyphal with the service instance. I reaches S
only over the overlay (TUN).

* HAProxy on S as a PROXY receiver (``accept-proxy``) answers with the ``src``/``dst`` it read:
  v2 for an IPv4 client, v1 for an IPv6 client. Both must be exactly C's address and port and
  the address and port C dialled on I, never an overlay address.
* ngircd on S (no PROXY support) behind the transparent unwrap: WHOIS shows C's address.
* Alone on one node: the unwrap's policy rule is set up and taken down again.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable

import pytest

from hyphal.testing.irc import ngircd_config
from hyphal.testing.netlab import Node, Topology, has_route

pytestmark = pytest.mark.netns

SENDER = """
import sys
from ipaddress import ip_address
from hyphal.ingress.proxy import encode_v2
from hyphal.testing.irc import whois_host
# a PROXY sender on loopback: the header claims a client at 203.0.113.7:40001
header = encode_v2((ip_address("203.0.113.7"), 40001), (ip_address("192.0.2.1"), 6667))
print(whois_host(sys.argv[1], int(sys.argv[2]), "bob", preamble=header))
"""


def start_ngircd(node: Node, listen: str, port: int) -> None:
    conf = ngircd_config(node.dir / "ngircd.conf", listen, port)
    node.serve(["ngircd", "-n", "-f", str(conf)], "ngircd.log", port)


def rules(node: Node) -> str:
    return node.exec(["ip", "rule"]).stdout + node.exec(["ip", "-6", "rule"]).stdout


def test_unwrap_transparent_to_ngircd(topology: Callable[..., Topology]) -> None:
    topo = topology("S", start=True)
    s = topo.node("S")
    start_ngircd(s, "127.0.0.1", 6668)
    r = s.api(
        "POST",
        "/api/v1/ingress/unwrap",
        {"listen": "127.0.0.1:6667", "backend": "127.0.0.1:6668"},
    )
    assert r.status == 201, r.text
    assert r.data["transparentActive"], r.data
    assert "lookup 1066" in rules(s)
    out = s.exec([sys.executable, "-c", SENDER, "127.0.0.1", "6667"], timeout=30)
    assert out.stdout.strip() == "203.0.113.7", out.stdout + out.stderr
    listed = json.loads(s.cli("ingress", "list", "--json").stdout)
    (row,) = listed["listeners"]
    assert row["counters"]["transparent"] == 1
    assert s.cli("ingress", "remove", "127.0.0.1:6667").returncode == 0
    assert "lookup 1066" not in rules(s)  # the policy rule goes with the last listener


HAPROXY = """global
    maxconn 100
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend echo
    bind :::{port} v4v6 accept-proxy
    http-request return status 200 content-type text/plain lf-string "src=%[src] sport=%[src_port] dst=%[dst] dport=%[dst_port]\\n"
"""


def chain(topology: Callable[..., Topology]) -> Topology:
    """C - I - S with daemons on I and S only, named i and s, routes both ways."""
    topo = topology("C-I I-S", tun=True)
    for name in ("I", "S"):
        node = topo.node(name)
        config = node.dir / "name.toml"
        config.write_text(f'member_name = "{name.lower()}"\n')
        node.extra_args = [*node.extra_args, "-c", str(config)]
    topo.start(["I", "S"])
    i, s = topo.node("I"), topo.node("S")
    topo.wait_until(lambda: has_route(i, s) and has_route(s, i), timeout=30)
    return topo


def add_service(topo: Topology, name: str, port: int) -> None:
    i, s = topo.node("I"), topo.node("S")
    added = s.cli(
        "service",
        "add",
        name,
        "--port",
        str(port),
        "--check",
        "tcp",
        "--interval",
        "0.5",
        "--rise",
        "1",
    )
    assert added.returncode == 0, added.stdout + added.stderr

    def usable() -> bool:
        r = i.api("GET", f"/api/v1/services/{name}")
        return r.status == 200 and any(x["usable"] for x in r.data["instances"])

    topo.wait_until(usable, timeout=30, message=f"I sees {name} on S usable")


def add_ingress(node: Node, listen: str, service: str, mode: str) -> None:
    out = node.cli(
        "ingress",
        "add",
        "--listen",
        listen,
        "--service",
        service,
        "--proxy-protocol",
        mode,
        "--json",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["state"] == "listening", out.stdout


FIELDS = re.compile(r"src=(\S+) sport=(\d+) dst=(\S+) dport=(\d+)")


def test_haproxy_reads_the_exact_client_and_dialled_addresses(
    topology: Callable[..., Topology],
) -> None:
    topo = chain(topology)
    c, i, s = topo.node("C"), topo.node("I"), topo.node("S")
    conf = s.dir / "haproxy.cfg"
    conf.write_text(HAPROXY.format(port=8080))
    s.serve(["haproxy", "-db", "-f", str(conf)], "haproxy.log", 8080)
    add_service(topo, "web", 8080)
    add_ingress(i, "0.0.0.0:8080", "web", "v2")
    add_ingress(i, "[::]:8081", "web", "v1")
    link = topo.link("C", "I")
    for mode, url, client_ip, dialled_ip, port in (
        ("v2", f"http://{link.addr4_b}:8080/", link.addr4_a, link.addr4_b, 8080),
        ("v1", f"http://[{link.addr6_b}]:8081/", str(link.addr6_a), str(link.addr6_b), 8081),
    ):
        out = c.exec(["curl", "-sS", "-m", "10", "-w", " local=%{local_port}", url], timeout=20)
        match = FIELDS.search(out.stdout)
        assert match, (
            f"{mode}: {out.stdout} {out.stderr} "
            + s.exec(["tail", "-5", str(s.dir / "haproxy.log")]).stdout
        )
        local_port = out.stdout.rsplit("local=", 1)[1].strip()
        assert match.groups() == (client_ip, local_port, dialled_ip, str(port)), (mode, out.stdout)
        assert str(s.address) not in out.stdout and str(i.address) not in out.stdout
    listed = json.loads(i.cli("ingress", "list", "--json").stdout)["listeners"]
    assert {row["listen"]: row["counters"].get("proxied") for row in listed} == {
        "0.0.0.0:8080": 1,
        "[::]:8081": 1,
    }, listed
    assert all(row["lastInstance"]["node"] == "s" for row in listed), listed
    human = i.cli("ingress", "list").stdout
    assert "0.0.0.0:8080" in human and "web" in human, human


def test_ngircd_behind_transparent_unwrap_sees_the_client(
    topology: Callable[..., Topology],
) -> None:
    topo = chain(topology)
    c, i, s = topo.node("C"), topo.node("I"), topo.node("S")
    start_ngircd(s, "127.0.0.1", 6668)
    out = s.cli(
        "ingress",
        "unwrap",
        "--listen",
        f"[{s.address}]:6667",
        "--backend",
        "127.0.0.1:6668",
        "--json",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["transparentActive"], out.stdout
    add_service(topo, "irc", 6667)
    add_ingress(i, "0.0.0.0:6667", "irc", "v2")
    link = topo.link("C", "I")
    script = (
        "import sys; from hyphal.testing.irc import whois_host; "
        "print(whois_host(sys.argv[1], 6667, 'carol'))"
    )
    who = c.exec([sys.executable, "-c", script, link.addr4_b], timeout=30)
    assert who.stdout.strip() == link.addr4_a, who.stdout + who.stderr
    log = (s.dir / "ngircd.log").read_text()
    assert f'from "{link.addr4_a}:' in log, log[-800:]
