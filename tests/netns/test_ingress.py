"""The public ingress and the transparent unwrap with real daemons and real receivers.

* ngircd (no PROXY support) behind the transparent unwrap: a client's address reaches
  WHOIS as the client's, not the unwrap's.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest

from hyphal.testing.irc import ngircd_config
from hyphal.testing.netlab import Node, Topology

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
    node.popen(["ngircd", "-n", "-f", str(conf)], "ngircd.log")
    node.topo.wait_until(lambda: node.listening(port), timeout=15, message="ngircd listening")


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
