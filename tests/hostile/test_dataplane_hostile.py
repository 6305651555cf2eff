"""Issue 8 item 1 against real daemons in namespaces: a mesh member that completed a real
handshake sends packets built to break a node two hops away. The victim counts each as a drop
with its reason, its link to the honest relay never drops, and it keeps routing for everyone.

Topology ``A-B B-C``, C with a TUN (notices are handled by its bridge); the attacker is a real
node (``tools/remote_attacker.py``) in A's namespace that links to B only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hyphal.testing.netlab import Topology
from hyphal.testing.victim import links_up

pytestmark = pytest.mark.netns

ATTACKER = Path(__file__).resolve().parent / "tools" / "remote_attacker.py"


def test_remote_packets_cost_the_victim_no_link(topology: Callable[..., Topology]) -> None:
    topo = topology("A-B B-C", start=True, tun=True)
    a, b, c = topo.node("A"), topo.node("B"), topo.node("C")
    topo.wait_until(lambda: a.ping(c.address).returncode == 0, timeout=30)
    c_links, b_links = links_up(topo.node("C")), links_up(topo.node("B"))
    before = c.get("/api/v1/admin/stats/packets")["drops"]

    attacker = a.popen(
        [sys.executable, str(ATTACKER), str(b.link_address("A")), c.public_key], "attacker.log"
    )
    try:
        assert attacker.wait(60) == 0, (a.dir / "attacker.log").read_text()
    finally:
        if attacker.poll() is None:
            attacker.kill()
    out = (a.dir / "attacker.log").read_text()
    assert "sent bad-notice" in out and "sent max-echo" in out and "done" in out, out

    drops = c.get("/api/v1/admin/stats/packets")["drops"]
    gained = {k: v - before.get(k, 0) for k, v in drops.items() if v != before.get(k, 0)}
    assert gained.get("notice-malformed", 0) >= 2, gained  # bad version byte, too short
    assert gained.get("e2e-too-big", 0) >= 1, gained  # the reply that no link frame could carry
    assert links_up(topo.node("C")) == c_links, c.log_tail(50)  # C never lost its link to B
    assert links_up(topo.node("B")) == b_links + 1, b.log_tail(
        50
    )  # only the attacker came and went
    assert "closed" not in c.log_tail(5000), c.log_tail(50)
    assert a.ping(c.address).returncode == 0  # C still reachable through B


SESSION_FLOODER = Path(__file__).resolve().parent / "tools" / "session_flooder.py"


def test_a_session_flood_cannot_unlock_a_recorded_packet(topology: Callable[..., Topology]) -> None:
    # More sessions than the receive LRU (4,096) and the floors (16,384) hold together.
    topo = topology("A-B B-C", start=True)
    a, b, c = topo.node("A"), topo.node("B"), topo.node("C")
    topo.wait_until(lambda: c.cli("ping", str(b.address), "-c", "1").returncode == 0, timeout=30)
    b_links, c_links = links_up(topo.node("B")), links_up(topo.node("C"))
    before = b.get("/api/v1/admin/stats/packets")["drops"]
    flood = a.exec(
        [sys.executable, str(SESSION_FLOODER), str(b.link_address("A")), b.public_key, "21000"],
        timeout=180,
    )
    assert "replayed" in flood.stdout, flood.stdout + flood.stderr

    def gained() -> dict[str, int]:
        drops = b.get("/api/v1/admin/stats/packets")["drops"]
        return {k: v - before.get(k, 0) for k, v in drops.items() if v != before.get(k, 0)}

    # A busy B may still be working through the flood's backlog when the flooder exits; the
    # replayed packet comes last.
    topo.wait_until(lambda: gained().get("e2e-replay", 0) >= 1, timeout=60, message="the replay")
    assert gained().get("e2e-replay", 0) == 1, gained()  # the recording, refused the second time
    assert links_up(topo.node("C")) == c_links and links_up(topo.node("B")) == b_links + 1
    assert c.cli("ping", str(b.address), "-c", "1").returncode == 0  # B serves everyone else
