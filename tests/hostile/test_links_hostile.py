"""Issue 8 in real namespaces: a victim daemon under link-level abuse stays bounded and serving.

B sits between A and C ("A-B B-C") and routes for them. B also dials a static peer nobody
listens on (a closed port on B's own loopback), and A's namespace opens 100 idle raw TCP
sockets to B's link port. B's fd count and RSS stay bounded, the flood's sockets are refused,
A still pings C through B, and B's two honest links never drop.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hyphal.testing.netlab import Topology
from hyphal.testing.victim import fd_count, links_up, rss_kib

pytestmark = pytest.mark.netns

FLOOD = """
import socket, sys, time
socks = []
for _ in range(100):
    s = socket.socket(socket.AF_INET6)
    s.connect((sys.argv[1], 9651))
    socks.append(s)
print("connected", len(socks), flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_victim_stays_bounded_under_dial_failures_and_idle_socket_flood(
    topology: Callable[..., Topology], tmp_path: Path
) -> None:
    topo = topology("A-B B-C", start=True, node_args={"B": ["--peers", "tcp://127.0.0.1:9"]})
    a, b, c = topo.node("A"), topo.node("B"), topo.node("C")
    result_ok = lambda: a.cli("ping", str(c.address), "-c", "1").returncode == 0  # noqa: E731
    topo.wait_until(result_ok, timeout=30)
    assert b.pid is not None
    pid = b.pid
    honest = links_up(b)
    assert honest == 2
    fds0, rss0 = fd_count(pid), rss_kib(pid)

    script = tmp_path / "flood.py"
    script.write_text(FLOOD)
    flood = a.popen([sys.executable, str(script), str(b.link_address("A")), "20"], "flood.log")
    try:
        deadline = time.monotonic() + 15
        most_fds = 0
        while time.monotonic() < deadline:
            most_fds = max(most_fds, fd_count(pid))
            time.sleep(0.2)
        assert "connected 100" in (a.dir / "flood.log").read_text()
        # per-source cap (8 handshakes) and budget: far fewer than 100 sockets are held
        assert most_fds - fds0 <= 16, (fds0, most_fds)
        assert (
            a.cli("ping", str(c.address), "-c", "1").returncode == 0
        )  # B still routes for A and C
    finally:
        flood.kill()
        flood.wait(10)
    assert rss_kib(pid) - rss0 < 20 * 1024  # under 20 MiB growth over the whole run
    assert links_up(b) == honest  # the honest links never dropped and came back
    assert "refusing inbound connection" in b.log_tail(5000)
