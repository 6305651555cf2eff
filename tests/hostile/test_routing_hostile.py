"""Issue 8 items 3, 4 and 5 against real daemons in namespaces: a neighbour that completed a
real handshake floods routing input. B sits between A and C ("A-B B-C") and routes for them;
the attacker runs in A's namespace and links to B only.

After each attack B still routes A <-> C, its two honest links never dropped, its RSS and file
descriptors stayed within the stated bounds, its event loop kept its pace while the attack ran
(never 1 s late, 250 ms late in at most 5 % of its samples), and a counter names what it
refused.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hyphal.testing.netlab import Node, Topology
from hyphal.testing.victim import (
    METRICS_ARGS,
    LagWindow,
    Watch,
    links_up,
    metrics,
    router_event,
)

pytestmark = pytest.mark.netns

TOOLS = Path(__file__).resolve().parent / "tools"
RSS_BOUND_KIB = 24 * 1024
FD_BOUND = 8


def routes_through(a: Node, c: Node) -> bool:
    return a.cli("ping", str(c.address), "-c", "1", "-W", "2").returncode == 0


def started(topology: Callable[..., Topology], **kwargs: object) -> Topology:
    topo = topology("A-B B-C", **kwargs)
    for name in "ABC":
        topo.node(name).extra_args = [*topo.node(name).extra_args, *METRICS_ARGS]
    topo.start()
    a, c = topo.node("A"), topo.node("C")
    topo.wait_until(lambda: routes_through(a, c), timeout=30)
    return topo


def attack(topo: Topology, argv: list[str], seconds: float) -> tuple[Watch, list[LagWindow], str]:
    """Run the attacker in A's namespace while sampling B; returns B's watch, B's and C's loop
    lag over the attack, and the attacker's output."""
    a, b = topo.node("A"), topo.node("B")
    assert b.pid is not None
    watch = Watch(b.pid)
    lags = [LagWindow(b), LagWindow(topo.node("C"))]
    attacker = a.popen([sys.executable, *argv], "attacker.log")
    try:
        watch.run_for(seconds)
        # B keeps routing for A and C while the attack runs
        assert routes_through(a, topo.node("C")), b.log_tail(40)
        watch.run_for(2)
        attacker.wait(seconds + 30)
    finally:
        if attacker.poll() is None:
            attacker.kill()
            attacker.wait(10)
    return watch, lags, (a.dir / "attacker.log").read_text()


def assert_victim_whole(
    topo: Topology, watch: Watch, lags: list[LagWindow], honest_b: int, honest_c: int
) -> None:
    a, b, c = topo.node("A"), topo.node("B"), topo.node("C")
    assert routes_through(a, c), b.log_tail(40)
    assert watch.rss_growth_kib < RSS_BOUND_KIB, (watch.rss0, watch.most_rss)
    assert watch.fd_growth <= FD_BOUND, (watch.fds0, watch.most_fds)
    # only the attacker's link came (and maybe went): the honest ones never dropped
    assert links_up(b) <= honest_b + 1 and "closed" not in c.log_tail(20000), c.log_tail(40)
    assert links_up(c) == honest_c
    for lag in lags:
        lag.check()


def test_hello_flood_from_a_neighbour_that_never_reads(topology: Callable[..., Topology]) -> None:
    topo = started(topology)
    b, c = topo.node("B"), topo.node("C")
    honest_b, honest_c = links_up(b), links_up(c)
    before = metrics(b)
    argv = [str(TOOLS / "link_flooder.py"), str(b.link_address("A")), "hello-flood", "12"]
    watch, lags, out = attack(topo, argv, 12)
    assert "frames" in out, out
    after = metrics(b)
    # Its IHUs are rate limited; what it sent past its TLV budget was dropped unread.
    refused = router_event(after, "replies_over_budget") - router_event(
        before, "replies_over_budget"
    )
    assert refused > 1000, (refused, out)
    assert_victim_whole(topo, watch, lags, honest_b, honest_c)


def test_seqno_request_flood_stays_at_the_victim(topology: Callable[..., Topology]) -> None:
    topo = started(topology)
    b, c = topo.node("B"), topo.node("C")
    honest_b, honest_c = links_up(b), links_up(c)
    before_b, before_c = metrics(b), metrics(c)
    c_prefix = c.subnet.network_address.packed[:8].hex()
    argv = [str(TOOLS / "link_flooder.py"), str(b.link_address("A")), "seqno-flood", "12", c_prefix]
    watch, lags, out = attack(topo, argv, 12)
    assert "frames" in out, out
    after_b, after_c = metrics(b), metrics(c)

    def gained(after: dict[str, float], before: dict[str, float], event: str) -> float:
        return router_event(after, event) - router_event(before, event)

    dropped = gained(after_b, before_b, "seqno_requests_over_budget") + gained(
        after_b, before_b, "tlvs_over_budget"
    )
    assert dropped > 10_000, (dropped, out)
    # What B passed on toward C's origin stayed within B's forwarding budget (256/s, 1024 burst).
    forwarded = gained(after_c, before_c, "seqno_requests_received")
    assert forwarded <= 1024 + 256 * 20, forwarded
    assert_victim_whole(topo, watch, lags, honest_b, honest_c)


def test_table_flood_evicts_only_the_flooders_routes(
    topology: Callable[..., Topology], tmp_path: Path
) -> None:
    config = tmp_path / "b.toml"
    config.write_text("max_routes = 300\n")
    topo = started(topology, node_args={"B": ["-c", str(config)]})
    a, b, c = topo.node("A"), topo.node("B"), topo.node("C")
    honest_b, honest_c = links_up(b), links_up(c)
    argv = [str(TOOLS / "table_flooder.py"), str(b.link_address("A")), "1200"]
    attacker = a.popen([sys.executable, *argv], "attacker.log")
    try:
        assert b.pid is not None
        watch = Watch(b.pid)
        lags = [LagWindow(b), LagWindow(c)]
        topo.wait_until(lambda: "originated" in (a.dir / "attacker.log").read_text(), timeout=60)
        topo.wait_until(
            lambda: (
                router_event(metrics(b), "updates_rejected_table_full")
                + router_event(metrics(b), "routes_evicted")
                > 0
            ),
            timeout=30,
        )
        watch.run_for(5)
        selected = b.get("/api/v1/admin/routes/selected")
        subnets = {r["subnet"] for r in selected}
        assert len(selected) <= 300
        # the honest routes stay whatever the flooder announces
        assert str(a.subnet) in subnets and str(c.subnet) in subnets
        assert routes_through(a, c)
        assert attacker.poll() is None, (a.dir / "attacker.log").read_text()
    finally:
        attacker.kill()
        attacker.wait(10)
    assert_victim_whole(topo, watch, lags, honest_b, honest_c)
