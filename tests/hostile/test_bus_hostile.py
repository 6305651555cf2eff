"""Issue 8 item 7 against real daemons in namespaces: a mesh member that completed a real
handshake attacks B's message bus ("A-B B-C"; the attacker runs in A's namespace and links to
B). After each attack B's memory grew only with what really arrived, the refusal is counted by
its reason, and an honest message from C to B is still delivered.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hyphal.testing.netlab import Node, Topology
from hyphal.testing.victim import METRICS_ARGS, LagWindow, Watch, links_up, metrics

pytestmark = pytest.mark.netns

ATTACKER = Path(__file__).resolve().parent / "tools" / "bus_attacker.py"
MESSAGES = "/api/v1/messages"


def honest_message_arrives(src: Node, dst: Node) -> None:
    payload = os.urandom(2000)
    body = {
        "dst": {"pk": dst.public_key},
        "payload": base64.b64encode(payload).decode(),
        "topic": base64.b64encode(b"honest").decode(),
    }
    sent = src.api("POST", MESSAGES, json=body, timeout=60)
    assert sent.status == 201, sent
    popped = dst.api(
        "GET", f"{MESSAGES}?topic={base64.b64encode(b'honest').decode()}&timeout=20", timeout=30
    )
    assert popped.status == 200, (popped, dst.log_tail(30))
    assert base64.b64decode(popped.data["payload"]) == payload
    assert popped.data["srcPk"] == src.public_key


def run_attack(
    topology: Callable[..., Topology], mode: str, seconds: float
) -> tuple[Topology, Watch, dict[str, float]]:
    topo = topology("A-B B-C")
    for name in "ABC":
        topo.node(name).extra_args = [*topo.node(name).extra_args, *METRICS_ARGS]
    topo.start()
    a, b, c = topo.node("A"), topo.node("B"), topo.node("C")
    topo.wait_until(
        lambda: c.cli("ping", str(b.address), "-c", "1", "-W", "2").returncode == 0, timeout=30
    )
    assert b.pid is not None
    watch = Watch(b.pid)
    lag = LagWindow(b)
    honest = links_up(b)
    before = metrics(b)
    attacker = a.popen(
        [sys.executable, str(ATTACKER), str(b.link_address("A")), b.public_key, mode, str(seconds)],
        "attacker.log",
    )
    try:
        watch.run_for(seconds)
        assert attacker.wait(60) == 0, (a.dir / "attacker.log").read_text()
    finally:
        if attacker.poll() is None:
            attacker.kill()
            attacker.wait(10)
    assert "sent" in (a.dir / "attacker.log").read_text()
    after = metrics(b)
    honest_message_arrives(c, b)
    assert links_up(b) <= honest + 1 and "closed" not in c.log_tail(20000)
    lag.check()
    return topo, watch, {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}


def test_inits_claiming_huge_messages_reserve_no_memory(topology: Callable[..., Topology]) -> None:
    _topo, watch, gained = run_attack(topology, "amplify", 6)
    # 4 x 128 MiB claimed, one 60 KiB chunk each: the victim holds chunks, not claims
    assert watch.rss_growth_kib < 24 * 1024, (watch.rss0, watch.most_rss)
    # the same source may reserve 128 MiB at a time: the other three were refused as busy
    assert gained[bus_key("refused_busy")] == 3, gained
    assert gained["hyphal_message_bus{what=incoming_allocated}"] <= 4 * 61440, gained


def test_inbox_flood_from_one_source_is_capped(topology: Callable[..., Topology]) -> None:
    _topo, watch, gained = run_attack(topology, "inbox-flood", 4)
    # 2,500 entries per source; the other 7,500 were refused as inbox-full and counted
    assert gained[bus_key("refused_inbox_full")] == 7500, gained
    assert gained["hyphal_message_bus{what=inbox_count}"] == 2500, gained
    assert watch.rss_growth_kib < 24 * 1024, (watch.rss0, watch.most_rss)


def bus_key(event: str) -> str:
    return f"hyphal_message_bus_events_total{{event={event}}}"
