"""Issue 10 against real daemons in namespaces: a neighbour that completed a real handshake
pushes forged, rolled-back, malformed and flooding member records at B ("A-B B-C"). B counts
each refusal by its reason, keeps routing A <-> C and keeps the honest members, its memory stays
bounded, and it stores no more records than its limits allow.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hyphal.membership.params import DEFAULT_PARAMS
from hyphal.testing.netlab import Topology
from hyphal.testing.victim import METRICS_ARGS, LagWindow, Watch, links_up, metrics

pytestmark = pytest.mark.netns

ATTACKER = Path(__file__).resolve().parent / "tools" / "member_attacker.py"
FLOOD = 600


def member_event(samples: dict[str, float], event: str) -> float:
    return samples.get(f"hyphal_membership_events_total{{event={event}}}", 0.0)


def test_hostile_member_records_are_refused_and_counted(
    topology: Callable[..., Topology],
) -> None:
    topo = topology("A-B B-C")
    for name in "ABC":
        node = topo.node(name)
        node.extra_args = [*node.extra_args, *METRICS_ARGS, "--name", name.lower()]
    topo.start()
    a, b, c = topo.node("A"), topo.node("B"), topo.node("C")

    def names_on_b() -> set[str]:
        return {m["name"] for m in b.get("/api/v1/members")}

    topo.wait_until(lambda: {"a", "b", "c"} <= names_on_b(), timeout=30)
    assert b.pid is not None
    watch = Watch(b.pid)
    lag = LagWindow(b)
    honest_c = links_up(c)
    attacker = a.popen(
        [sys.executable, str(ATTACKER), str(b.link_address("A")), str(FLOOD)], "attacker.log"
    )
    try:
        assert attacker.wait(120) == 0, (a.dir / "attacker.log").read_text()
    finally:
        if attacker.poll() is None:
            attacker.kill()
    watch.sample()
    samples = metrics(b)
    assert member_event(samples, "bad-signature") >= 1, samples
    assert member_event(samples, "rollback") >= 1, samples
    assert member_event(samples, "malformed") >= 1, samples
    members = b.get("/api/v1/members")
    names = {m["name"] for m in members}
    assert {"a", "b", "c"} <= names and "forged" not in names and "mallory-old" not in names
    assert len(members) <= DEFAULT_PARAMS.max_members
    assert c.cli("ping", "a", "-c", "1", "-W", "2").returncode == 0  # by name, through B
    assert links_up(c) == honest_c and "closed" not in c.log_tail(20000)
    assert watch.rss_growth_kib < 24 * 1024, (watch.rss0, watch.most_rss)
    lag.check()
