"""Issue 8 item 5 (metric lying) against real daemons in namespaces: the square A-L-D, A-H-D,
the A-H link slower.

First every node is honest: pings A -> D flow and no node's route audit demotes anything. Then
L is replaced by a liar (``tools/metric_liar.py``: every Update it sends claims metric 0, every
packet it should relay is dropped) with L's key; the lie wins A's and D's routes, their audits
lose their probes through L and demote it, and ``ping -6`` A -> D recovers through H.
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

LIAR = Path(__file__).resolve().parent / "tools" / "metric_liar.py"
METRICS = ["--metrics-api-address", "127.0.0.1:9100"]


def demoted(node: Node) -> int:
    text = node.exec(["curl", "-s", "http://127.0.0.1:9100/metrics"]).stdout
    found = re.search(r'hyphal_router_events_total\{event="routes_demoted"\} ([0-9.]+)', text)
    assert found is not None, text[-2000:]
    return int(float(found.group(1)))


def test_liar_is_demoted_and_ping_recovers(topology: Callable[..., Topology]) -> None:
    topo = topology("A-L L-D A-H:delay=20 H-D", tun=True)
    a, liar_ns, h, d = (topo.node(n) for n in "ALHD")
    for node in (a, liar_ns, h, d):
        node.extra_args = METRICS
    topo.start()
    topo.wait_until(lambda: a.ping(d.address, timeout=2).returncode == 0, timeout=30)
    topo.wait_until(lambda: netlab.next_hop(a, d) == liar_ns.public_key, timeout=20)

    # honest run: traffic both ways (ping and its replies) for about 4 probe rounds
    out = a.exec(["ping", "-6", "-n", "-q", "-c", "40", "-i", "0.2", str(d.address)], timeout=30)
    assert out.returncode == 0, out.stdout
    assert [demoted(n) for n in (a, liar_ns, h, d)] == [0, 0, 0, 0]

    liar_ns.kill()
    liar = liar_ns.popen(
        [sys.executable, str(LIAR), str(liar_ns.key_file), str(d.link_address("L"))], "liar.log"
    )
    try:
        # The lie wins A's route to D (A dials L again; the liar answers with L's key).
        topo.wait_until(lambda: netlab.next_hop(a, d) == liar_ns.public_key, timeout=20)
        # Pings are the traffic the audits watch; they recover once A and D have left L.
        topo.wait_until(
            lambda: (
                a.ping(d.address, timeout=1).returncode == 0
                and netlab.next_hop(a, d) == h.public_key
            ),
            timeout=30,
        )
        assert demoted(a) >= 1 and demoted(d) >= 1
        assert demoted(h) == 0
        assert "route audit: demoted" in a.log_tail(5000)
        assert liar.poll() is None, (liar_ns.dir / "liar.log").read_text()
    finally:
        if liar.poll() is None:
            liar.kill()
