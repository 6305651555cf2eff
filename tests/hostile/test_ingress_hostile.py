"""Slowloris, half-open clients, non-readers and a connection flood against a real ingress
(``A - I - S`` plus a good client ``G - I``): one attacking address gets at most its per-client
share, the daemon's fds and RSS stay bounded, silent connections go at the idle timeout, and
the good client is served throughout."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hyphal.testing.netlab import Topology, has_route
from hyphal.testing.victim import fd_count, rss_kib

pytestmark = pytest.mark.netns

ATTACKER = Path(__file__).resolve().parent / "tools" / "ingress_attacker.py"
SECONDS = 8.0
PER_CLIENT = 40
IDLE = 4


def test_ingress_survives_slowloris_flood_and_half_open(
    topology: Callable[..., Topology],
) -> None:
    topo = topology("A-I G-I I-S", tun=True)
    i, s, a, g = topo.node("I"), topo.node("S"), topo.node("A"), topo.node("G")
    config = i.dir / "ingress.toml"
    config.write_text(
        f"""[[ingress]]
listen = "0.0.0.0:8080"
service = "web"
proxy_protocol = "none"
max_per_client = {PER_CLIENT}
max_connections = 500
idle_timeout = {IDLE}
"""
    )
    i.extra_args = [*i.extra_args, "-c", str(config)]
    topo.start(["I", "S"])
    topo.wait_until(lambda: has_route(i, s) and has_route(s, i), timeout=30)
    (s.dir / "web").mkdir()
    (s.dir / "web" / "big").write_bytes(b"x" * (20 << 20))
    s.serve(
        [sys.executable, "-m", "http.server", "8080", "--bind", "::", "-d", str(s.dir / "web")],
        "web.log",
        8080,
    )
    added = s.cli("service", "add", "web", "--port", "8080", "--interval", "0.5", "--rise", "1")
    assert added.returncode == 0, added.stderr
    topo.wait_until(
        lambda: i.api("GET", "/api/v1/ingress").data["listeners"][0]["instances"] == 1,
        timeout=30,
        message="I sees web on S",
    )
    ingress_ip = topo.link("A", "I").addr4_b
    good_ip = topo.link("G", "I").addr4_b
    url = f"http://{good_ip}:8080/"
    assert "200" in g.exec(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url]).stdout

    pid = i.pid
    assert pid is not None
    fds0, rss0 = fd_count(pid), rss_kib(pid)
    attack = a.popen([sys.executable, str(ATTACKER), ingress_ip, "8080", str(SECONDS)], "attack")
    most_fds, most_rss, served = fds0, rss0, 0
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        most_fds, most_rss = max(most_fds, fd_count(pid)), max(most_rss, rss_kib(pid))
        out = g.exec(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", url])
        served += out.stdout == "200"
        time.sleep(0.3)
    attack.wait(SECONDS + 30)
    summary = json.loads((a.dir / "attack").read_text().strip().splitlines()[-1])
    status = i.get("/api/v1/ingress")["listeners"][0]
    print(f"attack: {summary}")
    print(
        f"I: fds {fds0} -> peak {most_fds}, RSS {rss0} -> peak {most_rss} KiB; {status['counters']}"
    )

    assert served >= 10  # the good client got through all along
    assert summary["floodConnects"] > 200, summary  # it really was a flood
    # one address holds at most its share: two fds (client + backend) per admitted connection
    assert most_fds - fds0 <= 2 * PER_CLIENT + 30, (fds0, most_fds)
    assert most_rss - rss0 < 64 * 1024, (rss0, most_rss)  # 30 non-readers of 20 MB: not buffered
    assert status["counters"]["refused-per-client"] > 0
    topo.wait_until(
        lambda: i.get("/api/v1/ingress")["listeners"][0]["open"] == 0,
        timeout=IDLE + 15,
        message="every attack connection closed",
    )
    assert fd_count(pid) <= fds0 + 5
    assert "200" in g.exec(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url]).stdout
