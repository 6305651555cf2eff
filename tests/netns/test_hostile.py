"""Issue 2 in real namespaces: private networks and hostile peers never break a daemon."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hyphal.testing.netlab import Topology

pytestmark = pytest.mark.netns

HOSTILE = str(Path(__file__).parent / "tools" / "hostile_peer.py")


def peer_alive(topo: Topology, name: str) -> bool:
    return any(p["connectionState"] == "alive" for p in topo.node(name).get("/api/v1/admin/peers"))


def wait_for_log(topo: Topology, name: str, needle: str, timeout: float = 15) -> None:
    topo.wait_until(lambda: needle in topo.node(name).log_tail(400), timeout=timeout)


def test_private_network_with_wrong_key_never_links(
    topology: Callable[..., Topology], tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(os.urandom(32))
    topo = topology(
        "A-B A-C",
        start=True,
        network_name="fleet",
        network_key=os.urandom(32),
        node_args={"B": ["--network-key-file", str(wrong)]},
    )
    # A and C share the key: their link comes up (positive control).
    topo.wait_until(lambda: peer_alive(topo, "C"), timeout=20)
    # B has the right name but the wrong key: both ends say so, and the link never completes.
    wait_for_log(topo, "A", "network key")
    wait_for_log(topo, "B", "network key")
    assert not peer_alive(topo, "B")
    assert all(
        r["subnet"] != str(topo.node("B").subnet)
        for r in topo.node("A").get("/api/v1/admin/routes/selected")
    )


def test_private_network_name_mismatch_is_reported(
    topology: Callable[..., Topology], tmp_path: Path
) -> None:
    topo = topology(
        "A-B",
        start=True,
        network_name="fleet",
        network_key=os.urandom(32),
        node_args={"B": ["--network-name", "other"]},
    )
    wait_for_log(topo, "A", "network")
    wait_for_log(topo, "B", "other")
    assert not peer_alive(topo, "A") and not peer_alive(topo, "B")


def test_public_node_cannot_join_private_network(topology: Callable[..., Topology]) -> None:
    topo = topology("A-B", start=True)
    # restart B in a private network: A (public) can no longer link with it
    b = topo.node("B")
    key = b.dir / "net.key"
    key.write_bytes(os.urandom(32))
    b.extra_args = ["--network-name", "fleet", "--network-key-file", str(key)]
    b.restart()
    wait_for_log(topo, "B", "public network")
    assert not peer_alive(topo, "B")


@pytest.mark.parametrize(
    "mode", ["garbage", "huge-handshake", "truncated", "huge-record", "bad-record", "bad-control"]
)
def test_hostile_peer_is_dropped_and_daemon_keeps_serving(
    topology: Callable[..., Topology], mode: str
) -> None:
    topo = topology("A-B", start=True)
    a, b = topo.node("A"), topo.node("B")
    topo.wait_until(lambda: len(a.get("/api/v1/admin/routes/selected")) == 1, timeout=20)
    link = topo.link("A", "B")
    result = a.exec([sys.executable, HOSTILE, str(link.addr6_b), "9651", mode], timeout=30)
    assert result.stdout.strip() == "closed", result.stdout + result.stderr + b.log_tail()
    assert b.running, b.log_tail()
    # B still serves the API and its honest peer.
    ping = a.cli("ping", str(b.address), "-c", "2", "-i", "0.2")
    assert ping.returncode == 0, ping.stdout + b.log_tail()
    assert b.get("/api/v1/admin")["nodePubkey"] == b.public_key
