"""Issue 10 "What it must show" item 4, in real namespaces: a client behind a one-way link.

    A --- B ======== D        B-D is slow (40 ms each way); every other link is fast
           \\      /
            C ---+            C (--role client) dials B and D; C listens nowhere

Nobody can dial C: it has no listener, and B and D have no peer entry for it. C is reachable
from A through B (``ping -6`` over the TUNs), and by its name ``phone`` from every node (its
member record, and DNS), yet traffic from A and B to D takes the slow link:
the path through C would be ten times shorter, and C relays nothing (its forwarded counter stays
0). Then C is replaced by a lying client (same key, client bit set, but it re-advertises every
route at metric 0 and would relay): B and D refuse its updates, count them, and keep routing
around it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hyphal.testing import netlab
from hyphal.testing.netlab import Node, Topology

pytestmark = pytest.mark.netns

LIAR = Path(__file__).resolve().parent / "tools" / "lying_client.py"
METRICS = ["--metrics-api-address", "127.0.0.1:9100"]


def router_counter(node: Node, event: str) -> int:
    text = node.exec(["curl", "-s", "http://127.0.0.1:9100/metrics"]).stdout
    found = re.search(rf'hyphal_router_events_total\{{event="{event}"\}} ([0-9.e+]+)', text)
    assert found is not None, text[-2000:]
    return int(float(found.group(1)))


def hops(node: Node, dst: Node) -> int:
    result = node.cli("ping", str(dst.address), "-c", "1", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r'"hops":\s*(\d+)', result.stdout)
    assert found is not None, result.stdout
    return int(found.group(1))


def test_client_behind_one_way_links_is_reachable_and_relays_nothing(
    topology: Callable[..., Topology],
) -> None:
    topo = topology(
        "A-B B-D:delay=40 C-B C-D",
        tun=True,
        node_args={"C": ["--role", "client", "--name", "phone"]},
    )
    a, b, c, d = (topo.node(n) for n in "ABCD")
    for node in (a, b, d):
        node.extra_args += METRICS
    topo.start()
    # C reaches everyone and everyone reaches C, with real ping -6 over the TUNs
    topo.wait_until(lambda: a.ping(c.address, timeout=2).returncode == 0, timeout=30)
    for src, dst in ((c, a), (d, c), (c, d), (a, d)):
        topo.wait_until(
            lambda s=src, t=dst: s.ping(t.address, timeout=2).returncode == 0, timeout=20
        )
    assert not c.listening(netlab.DAEMON_PORT)  # one-way: C only dials out
    assert c.get("/api/v1/admin/status")["self"]["role"] == "client"
    assert hops(a, c) == 2  # A - B - C
    # ... and by name: its member record says what it is, and its DNS name answers everywhere
    for node in (a, b, d):
        topo.wait_until(
            lambda n=node: n.cli("ping", "phone", "-c", "1").returncode == 0, timeout=20
        )
        rows = [m for m in node.get("/api/v1/members") if m["name"] == "phone"]
        assert [m["roles"] for m in rows] == [["client"]], rows
    aaaa = a.exec(["dig", "+short", "@127.0.0.1", "phone.hyphal.internal", "AAAA"], timeout=20)
    assert aaaa.stdout.strip() == str(c.address), aaaa.stdout + aaaa.stderr
    # the path through C (1 + 1 ms) beats the 40 ms link, but nobody takes it
    assert netlab.next_hop(b, d) == d.public_key and netlab.next_hop(d, b) == b.public_key
    assert netlab.next_hop(a, d) == b.public_key and hops(a, d) == 2  # A - B - D, not via C
    out = a.exec(["ping", "-6", "-n", "-q", "-c", "20", "-i", "0.05", str(d.address)], timeout=30)
    assert out.returncode == 0, out.stdout
    stats = c.get("/api/v1/admin/stats/packets")
    assert stats["forwarded"]["packets"] == 0, stats
    assert stats["drops"].get("transit-refused", 0) == 0, stats
    assert router_counter(b, "updates_refused_client") == 0  # an honest client offers nothing

    # the hostile variant: C's key, C's client bit, a relaying router that lies with metric 0
    c.kill()
    liar = c.popen(
        [
            sys.executable,
            str(LIAR),
            str(c.key_file),
            str(b.link_address("C")),
            str(d.link_address("C")),
        ],
        "liar.log",
    )
    try:
        topo.wait_until(lambda: router_counter(b, "updates_refused_client") > 0, timeout=20)
        topo.wait_until(lambda: router_counter(d, "updates_refused_client") > 0, timeout=20)
        assert a.ping(d.address, timeout=2).returncode == 0
        assert netlab.next_hop(b, d) == d.public_key and netlab.next_hop(a, d) == b.public_key
        assert hops(a, d) == 2
        # the liar itself is still reachable (its own prefix is accepted)
        topo.wait_until(lambda: netlab.next_hop(b, c) == c.public_key, timeout=20)
        assert "a client: it is never a transit hop" in b.log_tail(400)
        assert liar.poll() is None, (c.dir / "liar.log").read_text()
    finally:
        if liar.poll() is None:
            liar.kill()
